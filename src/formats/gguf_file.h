// Reader for GGUF v2/v3 model files: header, metadata of every value type, tensor infos and the
// memory-mapped tensor data. Every read is bounds-checked; a malformed or truncated file throws
// shardlm::Error naming the file, the item being read and the problem.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"
#include "formats/gguf_value.h"

namespace shardlm {

class GgufFile {
 public:
  // Opens and parses path (memory-mapped). Throws Error on any problem.
  explicit GgufFile(const std::string& path);
  // Parses an in-memory image (used by the fuzzer and tests); data must outlive the object.
  GgufFile(const uint8_t* data, size_t size, std::string display_name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed lookups: nullopt when absent; Error when present with the wrong type.
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;  // accepts integers too
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  const std::vector<std::string>* get_string_array(const std::string& key) const;
  const std::vector<int64_t>* get_int_array(const std::string& key) const;
  const std::vector<double>* get_float_array(const std::string& key) const;

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find_tensor(const std::string& name) const;
  size_t data_bytes() const { return data_size_; }

 private:
  void parse(const uint8_t* data, size_t size);
  [[noreturn]] void wrong_type(const std::string& key, const GgufValue& v, const char* want) const;

  std::string path_;
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_size_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace shardlm
