// Reader for .safetensors files: an 8-byte little-endian header length, a JSON header mapping
// tensor names to dtype/shape/data_offsets, then the raw data. Memory-mapped; every offset and
// shape is checked against the file, and errors name the file and the tensor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace shardlm {

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  // Parses an in-memory image (fuzzer, tests); data must outlive the object.
  SafetensorsFile(const uint8_t* data, size_t size, std::string display_name);

  const std::string& path() const { return path_; }
  // Tensors with shapes in GGML order (ne[0] = last safetensors dimension).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find_tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  void parse(const uint8_t* data, size_t size);

  std::string path_;
  std::unique_ptr<MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace shardlm
