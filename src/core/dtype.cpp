// Traits table for DType and the mapping from GGML type ids.
#include "core/dtype.h"

#include <array>

namespace shardlm {

namespace {
constexpr std::array<DTypeTraits, 12> kTraits = {{
    {"F32", 1, 4, false},
    {"F16", 1, 2, false},
    {"BF16", 1, 2, false},
    {"Q8_0", QK8_0, sizeof(BlockQ8_0), true},
    {"Q4_0", QK4_0, sizeof(BlockQ4_0), true},
    {"Q4_1", QK4_1, sizeof(BlockQ4_1), true},
    {"Q4_K", QK_K, sizeof(BlockQ4_K), true},
    {"Q5_K", QK_K, sizeof(BlockQ5_K), true},
    {"Q6_K", QK_K, sizeof(BlockQ6_K), true},
    {"I32", 1, 4, false},
    {"F8_E4M3", 1, 1, false},
    {"F8_E4M3_G128", 1, 1, true},  // row_bytes and row_fits_blocks below
}};

// GGML type ids, in ggml.h order; names are used in error messages for unsupported types.
constexpr std::array<std::string_view, 42> kGgmlNames = {"F32",
                                                         "F16",
                                                         "Q4_0",
                                                         "Q4_1",
                                                         "Q4_2(removed)",
                                                         "Q4_3(removed)",
                                                         "Q5_0",
                                                         "Q5_1",
                                                         "Q8_0",
                                                         "Q8_1",
                                                         "Q2_K",
                                                         "Q3_K",
                                                         "Q4_K",
                                                         "Q5_K",
                                                         "Q6_K",
                                                         "Q8_K",
                                                         "IQ2_XXS",
                                                         "IQ2_XS",
                                                         "IQ3_XXS",
                                                         "IQ1_S",
                                                         "IQ4_NL",
                                                         "IQ3_S",
                                                         "IQ2_S",
                                                         "IQ4_XS",
                                                         "I8",
                                                         "I16",
                                                         "I32",
                                                         "I64",
                                                         "F64",
                                                         "IQ1_M",
                                                         "BF16",
                                                         "Q4_0_4_4",
                                                         "Q4_0_4_8",
                                                         "Q4_0_8_8",
                                                         "TQ1_0",
                                                         "TQ2_0",
                                                         "IQ4_NL_4_4",
                                                         "IQ4_NL_4_8",
                                                         "IQ4_NL_8_8",
                                                         "MXFP4",
                                                         "?",
                                                         "?"};
}  // namespace

const DTypeTraits& dtype_traits(DType t) {
  return kTraits[static_cast<size_t>(t)];
}

bool row_fits_blocks(DType t, int64_t n) {
  if (t == DType::F8_E4M3_G128) return n >= 0 && n % 4 == 0;  // the scales 4-byte aligned
  return n >= 0 && n % dtype_traits(t).block_elems == 0;
}

size_t row_bytes(DType t, int64_t n) {
  if (t == DType::F8_E4M3_G128) {
    return static_cast<size_t>(n + 4 * ((n + kFp8GroupCols - 1) / kFp8GroupCols));
  }
  const auto& tr = dtype_traits(t);
  return static_cast<size_t>(n / tr.block_elems) * static_cast<size_t>(tr.block_bytes);
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  switch (id) {
    case 0:
      return DType::F32;
    case 1:
      return DType::F16;
    case 2:
      return DType::Q4_0;
    case 3:
      return DType::Q4_1;
    case 8:
      return DType::Q8_0;
    case 12:
      return DType::Q4_K;
    case 13:
      return DType::Q5_K;
    case 14:
      return DType::Q6_K;
    case 26:
      return DType::I32;
    case 30:
      return DType::BF16;
    default:
      return std::nullopt;
  }
}

std::string_view ggml_type_name(uint32_t id) {
  return id < kGgmlNames.size() ? kGgmlNames[id] : std::string_view("unknown");
}

}  // namespace shardlm
