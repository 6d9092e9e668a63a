// GGUF parsing with a bounds-checked cursor. Layout: magic "GGUF", version, tensor count, metadata
// count, metadata key/values, tensor infos, padding to the alignment, tensor data.
#include "formats/gguf_file.h"

#include <cstring>
#include <limits>

#include "core/error.h"

namespace shardlm {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 4;
constexpr uint64_t kMaxDims = 4;

// Reads little-endian values from [data, data + size), throwing a named Error past the end.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  void need(uint64_t n, const char* what) const {
    if (n > size_ - pos_) {
      fail(
          "'{}': file is truncated or corrupt while reading {} (needs {} bytes at offset {}, file "
          "has {}); re-download the model file",
          file_, what, n, pos_, size_);
    }
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& file() const { return file_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
      return 8;  // at least its length field
    case GgufType::kArray:
      return 12;  // at least type + count
  }
  return 0;
}

GgufType read_type(Cursor& c, const std::string& key) {
  const uint32_t t = c.read<uint32_t>("a metadata value type");
  if (t > static_cast<uint32_t>(GgufType::kFloat64)) {
    fail(
        "'{}': metadata key '{}' has unknown value type {}; the file is corrupt or from a newer "
        "GGUF version",
        c.file(), key, t);
  }
  return static_cast<GgufType>(t);
}

int64_t read_integer(Cursor& c, GgufType t, const std::string& key) {
  switch (t) {
    case GgufType::kUint8:
      return c.read<uint8_t>("a uint8 value");
    case GgufType::kInt8:
      return c.read<int8_t>("an int8 value");
    case GgufType::kBool: {
      const uint8_t b = c.read<uint8_t>("a bool value");
      if (b > 1) fail("'{}': metadata key '{}' holds bool value {}", c.file(), key, b);
      return b;
    }
    case GgufType::kUint16:
      return c.read<uint16_t>("a uint16 value");
    case GgufType::kInt16:
      return c.read<int16_t>("an int16 value");
    case GgufType::kUint32:
      return c.read<uint32_t>("a uint32 value");
    case GgufType::kInt32:
      return c.read<int32_t>("an int32 value");
    case GgufType::kInt64:
      return c.read<int64_t>("an int64 value");
    case GgufType::kUint64: {
      const uint64_t u = c.read<uint64_t>("a uint64 value");
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail("'{}': metadata key '{}' holds uint64 value {} which is out of range", c.file(), key,
             u);
      }
      return static_cast<int64_t>(u);
    }
    default:
      return 0;
  }
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, int depth);

void read_array(Cursor& c, GgufValue& v, const std::string& key, int depth) {
  if (depth >= kMaxArrayDepth)
    fail("'{}': metadata key '{}' nests arrays too deeply", c.file(), key);
  v.elem_type = read_type(c, key);
  const uint64_t n = c.read<uint64_t>("an array length");
  // Every element takes at least scalar_size bytes: reject impossible counts before allocating.
  if (n > c.remaining() / scalar_size(v.elem_type)) {
    fail(
        "'{}': metadata key '{}' declares {} array elements but the file is too short; the file is "
        "truncated or corrupt",
        c.file(), key, n);
  }
  for (uint64_t k = 0; k < n; ++k) {
    GgufValue e = read_value(c, v.elem_type, key, depth + 1);
    if (v.elem_type == GgufType::kString) {
      v.strings.push_back(std::move(e.s));
    } else if (e.is_float()) {
      v.floats.push_back(e.f);
    } else if (v.elem_type == GgufType::kArray) {
      v.nested.push_back(std::move(e));
    } else {
      v.ints.push_back(e.i);
    }
  }
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, int depth) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufType::kFloat32:
      v.f = c.read<float>("a float32 value");
      break;
    case GgufType::kFloat64:
      v.f = c.read<double>("a float64 value");
      break;
    case GgufType::kString:
      v.s = c.read_string("a string value");
      break;
    case GgufType::kArray:
      read_array(c, v, key, depth);
      break;
    default:
      v.i = read_integer(c, t, key);
      break;
  }
  return v;
}

}  // namespace

GgufFile::GgufFile(const std::string& path)
    : path_(path), file_(std::make_unique<MappedFile>(path)) {
  parse(file_->data(), file_->size());
}

GgufFile::GgufFile(const uint8_t* data, size_t size, std::string display_name)
    : path_(std::move(display_name)) {
  parse(data, size);
}

void GgufFile::parse(const uint8_t* data, size_t size) {
  Cursor c(data, size, path_);
  if (size < 4 || c.read<uint32_t>("the magic number") != kMagic) {
    fail(
        "'{}' is not a GGUF file (bad magic number); pass a .gguf model file or a Hugging Face "
        "model directory",
        path_);
  }
  version_ = c.read<uint32_t>("the version");
  if (version_ != 2 && version_ != 3) {
    fail(
        "'{}': GGUF version {} is not supported (shardlm reads versions 2 and 3); convert the "
        "model "
        "with a recent llama.cpp",
        path_, version_);
  }
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  if (n_kv > c.remaining() / 12 || n_tensors > c.remaining() / 24) {
    fail(
        "'{}': header declares {} metadata entries and {} tensors, more than the file can hold; "
        "the "
        "file is truncated or corrupt",
        path_, n_kv, n_tensors);
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("a metadata key");
    const GgufType t = read_type(c, key);
    GgufValue v = read_value(c, t, key, 0);
    if (!metadata_.emplace(key, std::move(v)).second) {
      fail("'{}': metadata key '{}' appears twice; the file is corrupt", path_, key);
    }
  }
  if (auto a = get_int("general.alignment")) {
    if (*a <= 0 || *a > (1 << 20) || (*a & (*a - 1)) != 0) {
      fail("'{}': general.alignment is {}, which is not a power of two", path_, *a);
    }
    alignment_ = static_cast<size_t>(*a);
  }

  struct RawInfo {
    uint32_t ggml_type;
    uint64_t offset;
  };
  std::vector<RawInfo> raw;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorView tv;
    tv.name = c.read_string("a tensor name");
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      fail("'{}': tensor '{}' has {} dimensions (1 to 4 supported)", path_, tv.name, n_dims);
    }
    tv.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("a tensor dimension");
      if (ne == 0 || ne > (uint64_t{1} << 40)) {
        fail("'{}': tensor '{}' has invalid dimension {} = {}", path_, tv.name, d, ne);
      }
      tv.ne[d] = static_cast<int64_t>(ne);
    }
    raw.push_back({c.read<uint32_t>("a tensor type"), c.read<uint64_t>("a tensor offset")});
    tensors_.push_back(std::move(tv));
  }

  const size_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (data_start > size) {
    fail("'{}': file ends before the tensor data begins; the file is truncated", path_);
  }
  data_size_ = size - data_start;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    TensorView& tv = tensors_[k];
    const auto dtype = dtype_from_ggml(raw[k].ggml_type);
    if (!dtype) {
      fail(
          "'{}': tensor '{}' has type {} ({}), which shardlm does not support (supported: F32, "
          "F16, "
          "BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K); use a file quantised to one of these",
          path_, tv.name, ggml_type_name(raw[k].ggml_type), raw[k].ggml_type);
    }
    tv.dtype = *dtype;
    if (!row_fits_blocks(tv.dtype, tv.ne[0])) {
      fail("'{}': tensor '{}' has rows of {} elements, not a multiple of the {} block size {}",
           path_, tv.name, tv.ne[0], dtype_name(tv.dtype), dtype_traits(tv.dtype).block_elems);
    }
    const double approx = static_cast<double>(tv.row_size()) * static_cast<double>(tv.ne[1]) *
                          static_cast<double>(tv.ne[2]) * static_cast<double>(tv.ne[3]);
    if (raw[k].offset % alignment_ != 0 || approx > static_cast<double>(data_size_) ||
        raw[k].offset > data_size_ || tv.nbytes() > data_size_ - raw[k].offset) {
      fail(
          "'{}': tensor '{}' ({} {}, offset {}) lies outside the file's {} bytes of tensor data; "
          "the "
          "file is truncated or corrupt",
          path_, tv.name, dtype_name(tv.dtype), tv.shape_str(), raw[k].offset, data_size_);
    }
    tv.data = data + data_start + raw[k].offset;
    if (!tensor_index_.emplace(tv.name, k).second) {
      fail("'{}': tensor '{}' appears twice; the file is corrupt", path_, tv.name);
    }
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

void GgufFile::wrong_type(const std::string& key, const GgufValue& v, const char* want) const {
  fail("'{}': metadata key '{}' is a {} but should be {}", path_, key, gguf_type_name(v.type),
       want);
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(key, *v, "an integer");
  return v->i;
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_integer()) return static_cast<double>(v->i);
  if (!v->is_float()) wrong_type(key, *v, "a number");
  return v->f;
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(key, *v, "a bool");
  return v->i != 0;
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kString) wrong_type(key, *v, "a string");
  return v->s;
}

const std::vector<std::string>* GgufFile::get_string_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
    wrong_type(key, *v, "an array of strings");
  }
  return &v->strings;
}

const std::vector<int64_t>* GgufFile::get_int_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::kArray || !v->floats.empty() || !v->strings.empty() ||
      !v->nested.empty()) {
    wrong_type(key, *v, "an array of integers");
  }
  return &v->ints;
}

const std::vector<double>* GgufFile::get_float_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::kArray || !v->ints.empty() || !v->strings.empty() ||
      !v->nested.empty()) {
    wrong_type(key, *v, "an array of floats");
  }
  return &v->floats;
}

const TensorView* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace shardlm
