// Token-id parity with Hugging Face `tokenizers`: every vocabulary type in tests/data/tokenizers
// (built and encoded by scripts/gen_tokenizer_refs.py) must give the reference ids and decoded text
// for every corpus line, and so must the real SmolLM2-135M vocabulary read from its GGUF.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/default_model.h"
#include "formats/gguf_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_gguf.h"
#include "tokenizer/tokenizer_json.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kData = fs::path(SHARDLM_TEST_DATA) / "tokenizers";

// Reference ids normally sit beside each tokenizer; SHARDLM_TOKENIZER_REFS points at a directory of
// the same layout holding a bigger corpus (e.g. thousands of random strings) for local runs.
fs::path refs_dir() {
  const char* dir = std::getenv("SHARDLM_TOKENIZER_REFS");
  return dir ? fs::path(dir) : kData;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string show(const std::vector<int32_t>& ids) {
  return json(ids).dump();
}

// Checks every case of a refs file; returns how many lines matched in all respects.
size_t check_cases(const Tokenizer& tok, const json& cases, const std::string& name) {
  size_t identical = 0, reported = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto ids = tok.encode(text, false, true);
    const auto with_special = tok.encode(text, true, true);
    const auto unparsed = tok.encode(text, false, false);
    const std::string decoded = tok.decode(c["ids_add_special"].get<std::vector<int32_t>>(), false);
    const std::string decoded_skip =
        tok.decode(c["ids_add_special"].get<std::vector<int32_t>>(), true);
    const bool ok = ids == c["ids"].get<std::vector<int32_t>>() &&
                    with_special == c["ids_add_special"].get<std::vector<int32_t>>() &&
                    unparsed == c["ids_no_parse_special"].get<std::vector<int32_t>>() &&
                    decoded == c["decoded"].get<std::string>() &&
                    decoded_skip == c["decoded_skip_special"].get<std::string>();
    if (ok) {
      ++identical;
    } else if (++reported <= 5) {
      ADD_FAILURE() << name << ": mismatch on " << json(text).dump() << "\n  ids  " << show(ids)
                    << "\n  want " << c["ids"].dump() << "\n  add_special " << show(with_special)
                    << " want " << c["ids_add_special"].dump() << "\n  no_parse " << show(unparsed)
                    << " want " << c["ids_no_parse_special"].dump() << "\n  decoded "
                    << json(decoded).dump() << " want " << c["decoded"].dump()
                    << "\n  decoded_skip " << json(decoded_skip).dump() << " want "
                    << c["decoded_skip_special"].dump();
    }
  }
  std::printf("[parity] %-14s %zu/%zu corpus lines identical to HF tokenizers\n", name.c_str(),
              identical, cases.size());
  EXPECT_EQ(identical, cases.size()) << name;
  return identical;
}

class TokenizerJsonParity : public testing::TestWithParam<std::string> {};

TEST_P(TokenizerJsonParity, MatchesHuggingFace) {
  const fs::path dir = kData / GetParam();
  auto tok = Tokenizer::create(load_tokenizer_json(dir.string()));
  const json refs = read_json(refs_dir() / GetParam() / "refs.json");
  ASSERT_GT(refs["cases"].size(), 100u);
  check_cases(*tok, refs["cases"], GetParam());
}

INSTANTIATE_TEST_SUITE_P(AllVocabularyTypes, TokenizerJsonParity,
                         testing::Values("bpe_gpt2", "bpe_smollm", "bpe_llama3", "bpe_qwen2",
                                         "bpe_deepseek3", "bpe_deepseek_llm", "spm_llama2",
                                         "spm_metaspace"));

// A tokenizer.json whose Splits are DeepSeek-V3's is named "deepseek-v3", GGUF's name for them: the
// parity above then ran through the regexes a GGUF file naming "deepseek-v3" gets.
TEST(TokenizerParity, DeepseekV3SplitsAreTheGgufName) {
  const TokenizerSpec spec = load_tokenizer_json((kData / "bpe_deepseek3").string());
  EXPECT_EQ(spec.pre, "deepseek-v3");
  EXPECT_TRUE(spec.pre_regexes.empty());
}

// Likewise DeepSeek-LLM's six Splits (DeepSeek-V2's tokenizer.json) are GGUF's "deepseek-llm".
TEST(TokenizerParity, DeepseekLlmSplitsAreTheGgufName) {
  const TokenizerSpec spec = load_tokenizer_json((kData / "bpe_deepseek_llm").string());
  EXPECT_EQ(spec.pre, "deepseek-llm");
  EXPECT_TRUE(spec.pre_regexes.empty());
}

// GGUF "llama" vocabularies carry scores instead of merges. Giving each merged token the score of
// its merge rank must reproduce the merge-ranked ids (llama.cpp's SentencePiece rule).
TEST(TokenizerParity, SentencePieceScoresInsteadOfMerges) {
  const fs::path dir = kData / "spm_llama2";
  TokenizerSpec spec = load_tokenizer_json(dir.string());
  spec.scores.assign(spec.tokens.size(), 0.0f);
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const std::string& m = spec.merges[rank];
    const size_t space = m.find(' ', 1);
    const std::string merged = m.substr(0, space) + m.substr(space + 1);
    for (size_t id = 0; id < spec.tokens.size(); ++id) {
      if (spec.tokens[id] == merged && spec.scores[id] == 0.0f) {
        spec.scores[id] = -1.0f - static_cast<float>(rank);
      }
    }
  }
  spec.merges.clear();
  auto tok = Tokenizer::create(std::move(spec));
  const json refs = read_json(refs_dir() / "spm_llama2" / "refs.json");
  size_t identical = 0;
  for (const auto& c : refs["cases"]) {
    identical +=
        tok->encode(c["text"].get<std::string>(), false) == c["ids"].get<std::vector<int32_t>>();
  }
  std::printf("[parity] spm scores     %zu/%zu corpus lines identical to HF merges\n", identical,
              refs["cases"].size());
  // SentencePiece scoring may join a token through any split of it, HF only through its listed
  // merge, so a few lines may legitimately differ; the bulk must not.
  EXPECT_GE(identical * 100, refs["cases"].size() * 95);
}

TEST(TokenizerParity, SmolLM2FromGguf) {
  const std::string path = app::default_model_path();  // $SHARDLM_MODEL_DIR or ~/.cache/...
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found";
  GgufFile gguf(path);
  auto tok = Tokenizer::create(tokenizer_spec_from_gguf(gguf));
  EXPECT_EQ(tok->vocab_size(), 49152);
  const json refs = read_json(refs_dir() / "smollm2_ref.json");
  check_cases(*tok, refs["cases"], "smollm2 (gguf)");

  // Speed on the real 49k vocabulary: a prompt of about 512 tokens.
  std::string prompt;
  for (const auto& c : refs["cases"]) {
    if (tok->encode(prompt, false).size() >= 512) break;
    prompt += c["text"].get<std::string>() + "\n";
  }
  const int reps = 20;
  const auto start = std::chrono::steady_clock::now();
  size_t n = 0;
  for (int i = 0; i < reps; ++i) n = tok->encode(prompt, false).size();
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      reps;
  std::printf("[perf] smollm2 encode of a %zu-token prompt: %.0f us\n", n, us);
}

}  // namespace
}  // namespace shardlm
