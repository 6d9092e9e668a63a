// GGUF reader: every metadata type round-trips, tensors are found in place, and malformed or
// truncated files give named errors instead of crashes.
#include <gtest/gtest.h>

#include "core/error.h"
#include "formats/gguf_file.h"
#include "gguf_writer.h"

namespace shardlm {
namespace {

using testing::GgufWriter;

GgufWriter sample_writer() {
  GgufWriter w;
  w.set("u8", uint8_t{200});
  w.set("i8", int8_t{-5});
  w.set("u16", uint16_t{60000});
  w.set("i16", int16_t{-30000});
  w.set("u32", uint32_t{4000000000u});
  w.set("i32", int32_t{-7});
  w.set("f32", 1.5f);
  w.set("bool", true);
  w.set("str", std::string("héllo"));
  w.set("u64", uint64_t{1} << 40);
  w.set("i64", int64_t{-(int64_t{1} << 40)});
  w.set("f64", 2.25);
  w.set("strs", std::vector<std::string>{"a", "", "ccc"});
  w.set("ints", std::vector<int32_t>{1, -2, 3});
  w.set("floats", std::vector<float>{0.5f, -1.f});
  std::vector<float> v(64 * 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.25f - 3.f;
  w.add_tensor({"t.f32", {64, 2}, DType::F32, v});
  w.add_tensor({"t.q8", {64, 2}, DType::Q8_0, v});
  w.add_tensor({"t.f16", {64, 2}, DType::F16, v});
  return w;
}

TEST(Gguf, RoundTripsEveryValueType) {
  const auto bytes = sample_writer().bytes();
  GgufFile g(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(*g.get_int("u8"), 200);
  EXPECT_EQ(*g.get_int("i8"), -5);
  EXPECT_EQ(*g.get_int("u16"), 60000);
  EXPECT_EQ(*g.get_int("i16"), -30000);
  EXPECT_EQ(*g.get_int("u32"), 4000000000ll);
  EXPECT_EQ(*g.get_int("i32"), -7);
  EXPECT_FLOAT_EQ(*g.get_float("f32"), 1.5f);
  EXPECT_TRUE(*g.get_bool("bool"));
  EXPECT_EQ(*g.get_string("str"), "héllo");
  EXPECT_EQ(*g.get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(*g.get_int("i64"), -(int64_t{1} << 40));
  EXPECT_DOUBLE_EQ(*g.get_float("f64"), 2.25);
  EXPECT_EQ(*g.get_string_array("strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(*g.get_int_array("ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*g.get_float_array("floats"), (std::vector<double>{0.5, -1.0}));
  EXPECT_FALSE(g.get_int("missing").has_value());
  EXPECT_THROW(g.get_string("u8"), Error);
}

TEST(Gguf, TensorsPointIntoTheData) {
  const auto bytes = sample_writer().bytes();
  GgufFile g(bytes.data(), bytes.size(), "mem.gguf");
  const TensorView* t = g.find_tensor("t.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne[0], 64);
  EXPECT_EQ(t->ne[1], 2);
  EXPECT_EQ(static_cast<const float*>(t->data)[5], 5 * 0.25f - 3.f);
  EXPECT_EQ(g.find_tensor("t.q8")->dtype, DType::Q8_0);
  EXPECT_EQ(g.find_tensor("t.q8")->nbytes(), 2u * 2 * sizeof(BlockQ8_0));
  // Offsets are aligned relative to the start of the data section.
  const auto* base = static_cast<const uint8_t*>(g.find_tensor("t.f32")->data);
  EXPECT_EQ((static_cast<const uint8_t*>(g.find_tensor("t.f16")->data) - base) % 32, 0);
}

TEST(Gguf, Version2Reads) {
  const auto bytes = sample_writer().bytes(2);
  GgufFile g(bytes.data(), bytes.size(), "v2.gguf");
  EXPECT_EQ(g.version(), 2u);
}

TEST(Gguf, EveryTruncationIsANamedError) {
  const auto bytes = sample_writer().bytes();
  for (size_t n = 0; n < bytes.size(); n += (n < 600 ? 1 : 97)) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      GgufFile g(cut.data(), cut.size(), "cut.gguf");
      ADD_FAILURE() << "truncated to " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos) << e.what();
    }
  }
}

TEST(Gguf, BadMagicVersionAndTypeAreNamed) {
  auto bytes = sample_writer().bytes();
  auto bad = bytes;
  bad[0] = 'X';
  EXPECT_THROW(GgufFile(bad.data(), bad.size(), "x"), Error);
  bad = bytes;
  bad[4] = 1;  // version 1
  try {
    GgufFile g(bad.data(), bad.size(), "v1.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 1"), std::string::npos);
  }
  GgufWriter w;
  w.add_tensor({"q5", {32}, DType::F32, std::vector<float>(32, 1.f)});
  auto b = w.bytes();
  // The tensor type field sits right before the 8-byte offset at the end of the tensor info.
  const size_t info_end = 4 + 4 + 8 + 8 + 8 + 2 + 4 + 8 + 4 + 8;
  b[info_end - 12] = 6;  // GGML Q5_0
  try {
    GgufFile g(b.data(), b.size(), "q5.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q5_0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'q5'"), std::string::npos) << e.what();
  }
}

TEST(Gguf, HugeCountsAreRejectedBeforeAllocating) {
  GgufWriter w;
  w.set("strs", std::vector<std::string>{"a"});
  auto b = w.bytes();
  // Overwrite the array length (after magic, version, counts, key, value type, element type).
  const size_t len_at = 4 + 4 + 8 + 8 + 8 + 4 + 4 + 4;
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(b.data() + len_at, &huge, 8);
  EXPECT_THROW(GgufFile(b.data(), b.size(), "huge.gguf"), Error);
}

}  // namespace
}  // namespace shardlm
