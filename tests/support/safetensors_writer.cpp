// safetensors writer: JSON header with data_offsets, padded to 8 bytes, then the data.
#include "safetensors_writer.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::testing {

std::vector<uint8_t> safetensors_bytes(const std::vector<SafetensorsTensor>& tensors,
                                       DType file_dtype) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<uint8_t> data;
  for (const auto& t : tensors) {
    const DType dtype = t.dtype.value_or(file_dtype);
    const size_t esize = dtype == DType::F32 ? 4 : dtype == DType::F8_E4M3 ? 1 : 2;
    const std::string name(dtype_name(dtype));
    const size_t begin = data.size();
    for (float v : t.values) {
      uint8_t b[4];
      if (dtype == DType::F8_E4M3) {
        b[0] = float_to_e4m3(v);
      } else if (dtype == DType::F32) {
        std::memcpy(b, &v, 4);
      } else {
        const uint16_t h = dtype == DType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
        std::memcpy(b, &h, 2);
      }
      data.insert(data.end(), b, b + esize);
    }
    header[t.name] = {{"dtype", name}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h += ' ';
  std::vector<uint8_t> out(8);
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       DType dtype) {
  const auto b = safetensors_bytes(tensors, dtype);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace shardlm::testing
