// safetensors reader: shapes in GGML order, dtype conversion, and named errors for bad headers,
// unsupported dtypes, offsets outside the file and truncation.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "formats/safetensors_file.h"
#include "safetensors_writer.h"

namespace shardlm {
namespace {

using testing::SafetensorsTensor;

std::vector<uint8_t> sample(DType dt) {
  std::vector<float> v(6);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) - 2.5f;
  return testing::safetensors_bytes({{"w", {2, 3}, v}, {"b", {3}, {1.f, 2.f, 3.f}}}, dt);
}

TEST(Safetensors, ReadsShapesAndValues) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    const auto b = sample(dt);
    SafetensorsFile f(b.data(), b.size(), "mem.safetensors");
    const TensorView* w = f.find_tensor("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->dtype, dt);
    EXPECT_EQ(w->ne[0], 3);  // last safetensors dim is the row
    EXPECT_EQ(w->ne[1], 2);
    float out[6];
    cpu::dequantize_row(dt, w->data, out, 6);
    for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(out[i], static_cast<float>(i) - 2.5f);
  }
}

TEST(Safetensors, TruncationAndCorruptionAreNamedErrors) {
  const auto b = sample(DType::BF16);
  for (size_t n = 0; n < b.size(); ++n) {
    std::vector<uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      SafetensorsFile f(cut.data(), cut.size(), "cut.safetensors");
      ADD_FAILURE() << "accepted " << n << " bytes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.safetensors"), std::string::npos);
    }
  }
}

std::vector<uint8_t> with_header(const std::string& h, size_t data_bytes) {
  std::vector<uint8_t> out(8);
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  out.insert(out.end(), h.begin(), h.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

TEST(Safetensors, BadHeadersAreRejected) {
  const char* bad[] = {
      R"({"w": {"dtype": "I8", "shape": [2], "data_offsets": [0, 2]}})",
      R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 100]}})",
      R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
      R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 8]}})",
      R"({"w": {"dtype": "F32", "shape": [2]}})",
      R"({"w": 5})",
      R"([1, 2])",
      R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})",
      "{not json",
  };
  for (const char* h : bad) {
    const auto b = with_header(h, 8);
    EXPECT_THROW(SafetensorsFile(b.data(), b.size(), "bad.safetensors"), Error) << h;
  }
  auto b = with_header("{}", 0);
  const uint64_t huge = uint64_t{1} << 62;
  std::memcpy(b.data(), &huge, 8);
  EXPECT_THROW(SafetensorsFile(b.data(), b.size(), "huge"), Error);
}

}  // namespace
}  // namespace shardlm
