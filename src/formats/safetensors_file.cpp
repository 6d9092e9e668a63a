// SafetensorsFile parsing.
#include "formats/safetensors_file.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace shardlm {

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // safetensors caps headers at 100 MB

std::optional<DType> parse_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "F8_E4M3") return DType::F8_E4M3;  // FP8 checkpoints (model/fp8_checkpoint.h)
  return std::nullopt;
}

TensorView parse_entry(const std::string& path, const std::string& name, const nlohmann::json& e,
                       const uint8_t* data, uint64_t data_size) {
  if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
      !e.contains("data_offsets")) {
    fail("'{}': tensor '{}' header entry needs dtype, shape and data_offsets", path, name);
  }
  const auto& dt = e["dtype"];
  if (!dt.is_string()) fail("'{}': tensor '{}' has a non-string dtype", path, name);
  const auto dtype = parse_dtype(dt.get<std::string>());
  if (!dtype) {
    fail("'{}': tensor '{}' has dtype {}; shardlm reads BF16, F16, F32 and F8_E4M3 safetensors weights",
         path, name, dt.get<std::string>());
  }
  const auto& shape = e["shape"];
  if (!shape.is_array() || shape.size() > 4) {
    fail("'{}': tensor '{}' has a shape that is not a list of at most 4 dimensions", path, name);
  }
  TensorView tv;
  tv.name = name;
  tv.dtype = *dtype;
  tv.n_dims = std::max<int>(1, static_cast<int>(shape.size()));
  for (size_t d = 0; d < shape.size(); ++d) {
    const auto& dim = shape[shape.size() - 1 - d];
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() == 0 ||
        dim.get<uint64_t>() > (1ull << 40)) {
      fail("'{}': tensor '{}' has an invalid dimension in its shape", path, name);
    }
    tv.ne[d] = dim.get<int64_t>();
  }
  const auto& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned()) {
    fail("'{}': tensor '{}' needs data_offsets [begin, end]", path, name);
  }
  const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  // In double: four dimensions of up to 2^40 overflow int64 (numel() is only safe once this holds).
  double want = dtype_traits(tv.dtype).block_bytes;
  for (int64_t ne : tv.ne) want *= static_cast<double>(ne);
  if (begin > end || end > data_size || static_cast<double>(end - begin) != want) {
    fail(
        "'{}': tensor '{}' ({} {}) has data_offsets [{}, {}] that do not match its size or lie "
        "outside the file's {} data bytes; the file is truncated or corrupt",
        path, name, dtype_name(tv.dtype), tv.shape_str(), begin, end, data_size);
  }
  tv.data = data + begin;
  return tv;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path)
    : path_(path), file_(std::make_unique<MappedFile>(path)) {
  parse(file_->data(), file_->size());
}

SafetensorsFile::SafetensorsFile(const uint8_t* data, size_t size, std::string display_name)
    : path_(std::move(display_name)) {
  parse(data, size);
}

void SafetensorsFile::parse(const uint8_t* data, size_t size) {
  if (size < 8) fail("'{}' is too short to be a safetensors file", path_);
  uint64_t header_len;
  std::memcpy(&header_len, data, 8);
  if (header_len > kMaxHeader || header_len > size - 8) {
    fail(
        "'{}': header length {} exceeds the file size {}; the file is truncated or not safetensors",
        path_, header_len, size);
  }
  const char* hp = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header = nlohmann::json::parse(hp, hp + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    fail("'{}': header is not a JSON object; the file is corrupt", path_);
  }
  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_object()) {
        for (auto m = it->begin(); m != it->end(); ++m) {
          if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
        }
      }
      continue;
    }
    index_[it.key()] = tensors_.size();
    tensors_.push_back(parse_entry(path_, it.key(), *it, body, body_size));
  }
}

const TensorView* SafetensorsFile::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace shardlm
