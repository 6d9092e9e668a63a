// A GGUF metadata value: a scalar, a string, or an array of them (arrays of arrays are kept as
// nested values). Typed accessors throw shardlm::Error naming the key when the type is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* gguf_type_name(GgufType t);

struct GgufValue {
  GgufType type = GgufType::kUint8;
  GgufType elem_type = GgufType::kUint8;  // for arrays
  int64_t i = 0;  // integer and bool scalars (uint64 values above INT64_MAX are rejected)
  double f = 0;   // float scalars
  std::string s;  // string scalar
  std::vector<int64_t> ints;         // integer/bool arrays
  std::vector<double> floats;        // float arrays
  std::vector<std::string> strings;  // string arrays
  std::vector<GgufValue> nested;     // arrays of arrays

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  size_t array_size() const;
  std::string to_display(size_t max_items = 8) const;  // short human-readable form for `info`
};

}  // namespace shardlm
