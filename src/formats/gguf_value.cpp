// GgufValue helpers: type names and a short display form.
#include "formats/gguf_value.h"

#include <fmt/format.h>

namespace shardlm {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
      return "uint8";
    case GgufType::kInt8:
      return "int8";
    case GgufType::kUint16:
      return "uint16";
    case GgufType::kInt16:
      return "int16";
    case GgufType::kUint32:
      return "uint32";
    case GgufType::kInt32:
      return "int32";
    case GgufType::kFloat32:
      return "float32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kUint64:
      return "uint64";
    case GgufType::kInt64:
      return "int64";
    case GgufType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kBool:
      return true;
    default:
      return false;
  }
}

size_t GgufValue::array_size() const {
  return ints.size() + floats.size() + strings.size() + nested.size();
}

std::string GgufValue::to_display(size_t max_items) const {
  if (type == GgufType::kString) return s.size() > 80 ? s.substr(0, 77) + "..." : s;
  if (type == GgufType::kBool) return i ? "true" : "false";
  if (is_integer()) return std::to_string(i);
  if (is_float()) return fmt::format("{}", f);
  std::string out = fmt::format("[{} x {}]", array_size(), gguf_type_name(elem_type));
  return out;
}

}  // namespace shardlm
