// GgufWriter implementation (little-endian, GGUF v2/v3 layout).
#include "gguf_writer.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "backend/cpu/quant.h"
#include "core/fp16.h"

namespace shardlm::testing {

namespace {

struct Out {
  std::vector<uint8_t> b;
  template <typename T>
  void put(T v) {
    const size_t n = b.size();
    b.resize(n + sizeof(T));
    std::memcpy(b.data() + n, &v, sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
};

uint32_t ggml_id(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q4_1:
      return 3;
    case DType::Q8_0:
      return 8;
    case DType::Q4_K:
      return 12;
    case DType::Q5_K:
      return 13;
    case DType::Q6_K:
      return 14;
    case DType::BF16:
      return 30;
    case DType::I32:
      return 26;
  }
  return 0;
}

void put_value(Out& o, const GgufMetaValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, uint8_t>) {
          o.put<uint32_t>(0);
          o.put(x);
        } else if constexpr (std::is_same_v<T, int8_t>) {
          o.put<uint32_t>(1);
          o.put(x);
        } else if constexpr (std::is_same_v<T, uint16_t>) {
          o.put<uint32_t>(2);
          o.put(x);
        } else if constexpr (std::is_same_v<T, int16_t>) {
          o.put<uint32_t>(3);
          o.put(x);
        } else if constexpr (std::is_same_v<T, uint32_t>) {
          o.put<uint32_t>(4);
          o.put(x);
        } else if constexpr (std::is_same_v<T, int32_t>) {
          o.put<uint32_t>(5);
          o.put(x);
        } else if constexpr (std::is_same_v<T, float>) {
          o.put<uint32_t>(6);
          o.put(x);
        } else if constexpr (std::is_same_v<T, bool>) {
          o.put<uint32_t>(7);
          o.put<uint8_t>(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::string>) {
          o.put<uint32_t>(8);
          o.str(x);
        } else if constexpr (std::is_same_v<T, uint64_t>) {
          o.put<uint32_t>(10);
          o.put(x);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          o.put<uint32_t>(11);
          o.put(x);
        } else if constexpr (std::is_same_v<T, double>) {
          o.put<uint32_t>(12);
          o.put(x);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          o.put<uint32_t>(9);
          o.put<uint32_t>(8);
          o.put<uint64_t>(x.size());
          for (const auto& s : x) o.str(s);
        } else if constexpr (std::is_same_v<T, std::vector<int32_t>>) {
          o.put<uint32_t>(9);
          o.put<uint32_t>(5);
          o.put<uint64_t>(x.size());
          for (auto e : x) o.put(e);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          o.put<uint32_t>(9);
          o.put<uint32_t>(6);
          o.put<uint64_t>(x.size());
          for (auto e : x) o.put(e);
        }
      },
      v);
}

std::vector<uint8_t> encode_tensor(const GgufTensorSpec& t) {
  int64_t n = 1;
  for (auto d : t.ne) n *= d;
  if (static_cast<int64_t>(t.values.size()) != n)
    throw std::runtime_error("tensor size mismatch: " + t.name);
  const size_t bytes = row_bytes(t.dtype, t.ne[0]) * static_cast<size_t>(n / t.ne[0]);
  std::vector<uint8_t> out(bytes);
  const size_t rb = row_bytes(t.dtype, t.ne[0]);
  for (int64_t r = 0; r < n / t.ne[0]; ++r) {
    cpu::quantize_row(t.dtype, t.values.data() + r * t.ne[0], out.data() + r * rb, t.ne[0]);
  }
  return out;
}

}  // namespace

std::vector<uint8_t> GgufWriter::bytes(uint32_t version, uint32_t alignment) const {
  Out o;
  o.put<uint32_t>(0x46554747);
  o.put<uint32_t>(version);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(meta_.size());
  for (const auto& [k, v] : meta_) {
    o.str(k);
    put_value(o, v);
  }
  std::vector<std::vector<uint8_t>> data;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    data.push_back(encode_tensor(t));
    o.str(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (auto d : t.ne) o.put<uint64_t>(static_cast<uint64_t>(d));
    o.put<uint32_t>(ggml_id(t.dtype));
    o.put<uint64_t>(offset);
    offset += (data.back().size() + alignment - 1) / alignment * alignment;
  }
  while (o.b.size() % alignment) o.b.push_back(0);
  for (const auto& d : data) {
    o.b.insert(o.b.end(), d.begin(), d.end());
    while (o.b.size() % alignment) o.b.push_back(0);
  }
  return o.b;
}

void GgufWriter::write(const std::string& path, uint32_t version) const {
  const auto b = bytes(version);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace shardlm::testing
