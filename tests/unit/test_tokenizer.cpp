// Tokenizer behaviour beyond id parity: UTF-8 helpers, pre-tokenizer pieces, the streaming
// detokenizer, special tokens, errors users can act on and thread safety (encode speed:
// bench/bench_tokenizer).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode_nfc.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(SHARDLM_TEST_DATA) / "tokenizers";

std::unique_ptr<Tokenizer> load(const std::string& name) {
  return Tokenizer::create(load_tokenizer_json((kData / name).string()));
}

const char* kMixed =
    "Hello, 世界! 😀👍🏽 naïve café\n\tcode: x = fib(10) + 123456;  <|im_end|> ¿qué? "
    "🇫🇷 e\u0301";

TEST(Utf8, ValidatesAndRepairs) {
  EXPECT_TRUE(utf8::is_valid("héllo 世界 😀"));
  EXPECT_FALSE(utf8::is_valid("\xC0\xAF"));          // overlong
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8::is_valid("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_EQ(utf8::repair("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8::repair("a\xE4\xB8"), "a\xEF\xBF\xBD");  // truncated: one replacement
  EXPECT_EQ(utf8::repair("\xC3"
                         "A"),
            "\xEF\xBF\xBD"
            "A");
}

TEST(Utf8, ByteLevelAlphabetRoundTrips) {
  const auto& a = utf8::byte_level_alphabet();
  EXPECT_EQ(a.byte_to_text[' '], "\xC4\xA0");   // Ġ
  EXPECT_EQ(a.byte_to_text['\n'], "\xC4\x8A");  // Ċ
  EXPECT_EQ(a.byte_to_text['A'], "A");
  for (int b = 0; b < 256; ++b) {
    std::string out;
    ASSERT_TRUE(utf8::byte_level_decode(a.byte_to_text[b], out));
    ASSERT_EQ(out, std::string(1, static_cast<char>(b)));
  }
}

// Expected values from Python's unicodedata.normalize("NFC", ...).
TEST(Unicode, NfcNormalizes) {
  EXPECT_EQ(nfc_normalize("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc_normalize("a\u0328\u0301"), "\u0105\u0301");
  EXPECT_EQ(nfc_normalize("\u1100\u1161\u11a8"), "\uac01");    // Hangul L V T
  EXPECT_EQ(nfc_normalize("q\u0307\u0323"), "q\u0323\u0307");  // reordered, no composite
  EXPECT_EQ(nfc_normalize("\u212b"), "\u00c5");                // singleton (Angstrom sign)
  EXPECT_EQ(nfc_normalize("x\u0301\u0301"), "x\u0301\u0301");
  EXPECT_EQ(nfc_normalize("\u0344"), "\u0308\u0301");  // excluded from composition
  EXPECT_EQ(nfc_normalize("A\u030a\u0301"), "\u01fa");
  EXPECT_EQ(nfc_normalize("plain ascii, caf\u00e9 \u4e2d"), "plain ascii, caf\u00e9 \u4e2d");
}

std::vector<std::string> split(const PreTokenizer& pre, std::string_view text) {
  std::vector<std::string_view> pieces;
  pre.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

TEST(PreTokenizer, NamedPatterns) {
  using V = std::vector<std::string>;
  PreTokenizer gpt2("gpt2", {});
  EXPECT_EQ(split(gpt2, "Hello world's  end 123"),
            (V{"Hello", " world", "'s", " ", " end", " 123"}));
  PreTokenizer smollm("smollm", {});
  EXPECT_EQ(split(smollm, "a 123"), (V{"a", " ", "1", "2", "3"}));
  PreTokenizer llama3("llama-bpe", {});
  EXPECT_EQ(split(llama3, "1234567 I'LL\n\n go"),
            (V{"123", "456", "7", " I", "'LL", "\n\n", " go"}));
  PreTokenizer qwen2("qwen2", {});
  EXPECT_EQ(split(qwen2, "ab12"), (V{"ab", "1", "2"}));
  // NEL counts as whitespace, as in Oniguruma.
  EXPECT_EQ(split(gpt2, "a\u0085b"), (V{"a", "\u0085", "b"}));
  // DeepSeek-V3 (pieces as Hugging Face tokenizers gives them): numbers in threes, CJK and kana
  // runs alone, punctuation with the letters after it.
  PreTokenizer deepseek3("deepseek-v3", {});
  EXPECT_EQ(split(deepseek3, "Hello, world! 12345 \u4f60\u597d"),
            (V{"Hello", ",", " world", "!", " ", "123", "45", " ", "\u4f60\u597d"}));
  EXPECT_EQ(split(deepseek3, "I'll (x) .NET\n\n  ok"),
            (V{"I", "'ll", " (", "x", ")", " .", "NET", "\n\n", " ", " ok"}));
  // DeepSeek-LLM (pieces as Hugging Face tokenizers gives them): numbers whole, CJK and Hangul
  // runs alone, Armenian small letters outside the letter class, U+0800 to U+4E00 (here U+1F7D,
  // U+2003, U+3000) isolated by the CJK Split, space at the end of a piece alone.
  PreTokenizer deepseek_llm("deepseek-llm", {});
  EXPECT_EQ(split(deepseek_llm, "Hello, world! 12345 \u4f60\u597d\ud55c\uad6d"),
            (V{"Hello", ",", " world", "!", " ", "12345", " ", "\u4f60\u597d\ud55c\uad6d"}));
  EXPECT_EQ(split(deepseek_llm, "\u0540\u0561\u0575 ok  \n\u03a9\u1f7d \uff21\uff22\uff01 x\u3000"),
            (V{"\u0540", "\u0561\u0575", " ok", "  ", "\n", "\u03a9", "\u1f7d", " \uff21\uff22",
               "\uff01", " x", "\u3000"}));
  EXPECT_EQ(split(deepseek_llm, "a\u2003!b\u2028(c"),
            (V{"a", "\u2003", "!", "b", "\u2028", "(", "c"}));
  EXPECT_EQ(split(deepseek_llm, "x\u0561\u0575  "), (V{"x", "\u0561\u0575", "  "}));
  // llama.cpp's converter's spellings of known patterns.
  EXPECT_EQ(PreTokenizer::regexes_for("gpt-2"), PreTokenizer::regexes_for("gpt2"));
  EXPECT_EQ(PreTokenizer::regexes_for("deepseek-r1-qwen"), PreTokenizer::regexes_for("qwen2"));
  EXPECT_THROW(PreTokenizer("no-such-pre", {}), Error);
  EXPECT_THROW(PreTokenizer("custom", {"(unclosed"}), Error);
}

TEST(Tokenizer, RoundTripsEveryVocabularyType) {
  for (const char* name : {"bpe_gpt2", "bpe_smollm", "bpe_llama3", "bpe_qwen2", "bpe_deepseek3",
                           "bpe_deepseek_llm", "spm_llama2", "spm_metaspace"}) {
    auto tok = load(name);
    // Qwen2's NFC normalizer composes the "e" + combining acute at the end of kMixed.
    const std::string expected = tok->spec().normalize_nfc ? nfc_normalize(kMixed) : kMixed;
    EXPECT_EQ(tok->decode(tok->encode(kMixed, false)), expected) << name;
  }
}

TEST(Tokenizer, SpecialTokens) {
  auto tok = load("bpe_smollm");
  const int32_t im_end = *tok->token_id("<|im_end|>");
  EXPECT_TRUE(tok->is_special(im_end));
  EXPECT_TRUE(tok->is_eos(im_end));  // from tokenizer_config.json eos_token
  EXPECT_EQ(tok->encode("<|im_end|>", false), std::vector<int32_t>{im_end});
  EXPECT_NE(tok->encode("<|im_end|>", false, false), std::vector<int32_t>{im_end});
  EXPECT_EQ(tok->decode(tok->encode("a<|im_end|>b", false), true), "ab");
  EXPECT_EQ(tok->token_bytes(im_end, false), "");
  EXPECT_EQ(tok->token_bytes(im_end, true), "<|im_end|>");

  auto spm = load("spm_llama2");
  ASSERT_TRUE(spm->spec().add_bos);
  const auto ids = spm->encode("Hi", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], *spm->spec().bos_id);
  EXPECT_EQ(spm->decode(ids, true), "Hi");
  EXPECT_EQ(spm->decode(ids, false), "<s> Hi");  // as HF: only a leading space is stripped
  // A user-defined added token is split out but is not special.
  const int32_t tool = *spm->token_id("<tool_call>");
  EXPECT_FALSE(spm->is_special(tool));
  EXPECT_EQ(spm->encode("<tool_call>", false, false), std::vector<int32_t>{tool});
}

TEST(Tokenizer, InvalidUtf8InputIsRepaired) {
  auto tok = load("bpe_gpt2");
  EXPECT_EQ(tok->decode(tok->encode("a\xFF\xFE"
                                    "b",
                                    false)),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
  EXPECT_THROW(tok->decode({tok->vocab_size()}), Error);
  EXPECT_THROW(tok->token_bytes(-1), Error);
}

// Streaming must never emit a broken character, and the pieces must add up to the whole.
TEST(IncrementalDetokenizer, EmitsOnlyCompleteCharacters) {
  for (const char* name : {"bpe_smollm", "bpe_llama3", "spm_llama2"}) {
    auto tok = load(name);
    const auto ids = tok->encode(kMixed, false);
    IncrementalDetokenizer detok(*tok, /*skip_special=*/false);
    std::string streamed;
    size_t held_back = 0;
    for (const int32_t id : ids) {
      const std::string piece = detok.push(id);
      EXPECT_TRUE(utf8::is_valid(piece)) << name;
      held_back += piece.empty();
      streamed += piece;
    }
    streamed += detok.flush();
    // The stream keeps SentencePiece's leading space (it continues a prompt); decode() drops it.
    const bool spm = tok->spec().kind == TokenizerKind::kSentencePieceBpe;
    EXPECT_EQ(streamed, (spm ? " " : "") + std::string(kMixed)) << name;
    if (spm) EXPECT_GT(held_back, 0u) << "byte-fallback characters span several tokens";
  }
}

TEST(IncrementalDetokenizer, SkipsSpecialAndFlushesBrokenTail) {
  auto tok = load("spm_llama2");
  IncrementalDetokenizer detok(*tok, /*skip_special=*/true);
  EXPECT_EQ(detok.push(*tok->spec().bos_id), "");
  EXPECT_EQ(detok.push(*tok->token_id("<0xE4>")), "");
  EXPECT_EQ(detok.push(*tok->token_id("<0xB8>")), "");
  EXPECT_EQ(detok.flush(), "\xEF\xBF\xBD");  // an unfinished character at the end
  EXPECT_EQ(detok.push(*tok->token_id("<0xFF>")), "\xEF\xBF\xBD");  // can never be valid
  EXPECT_EQ(detok.push(*tok->token_id("<0x41>")), "A");
}

fs::path write_temp(const std::string& name, const std::string& content) {
  const fs::path dir = fs::temp_directory_path() / "shardlm_tok_test";
  fs::create_directories(dir);
  std::ofstream(dir / name) << content;
  return dir / name;
}

void expect_error(const std::string& file_or_dir, const std::string& fragment) {
  try {
    load_tokenizer_json(file_or_dir);
    ADD_FAILURE() << "no error for " << file_or_dir;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(TokenizerJson, ErrorsNameTheFileAndTheProblem) {
  expect_error("/nonexistent/model", "/nonexistent/model does not exist");
  expect_error(fs::temp_directory_path().string(), "tokenizer.json not found");
  expect_error(write_temp("bad.json", "{not json").string(), "is not valid JSON");
  expect_error(
      write_temp("wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {}}})").string(),
      "model type \"WordPiece\" is not supported");
  expect_error(write_temp("nfkc.json",
                          R"({"normalizer": {"type": "NFKC"}, "model": {"type": "BPE",
                              "vocab": {"a": 0}, "merges": []}})")
                   .string(),
               "normalizer");
}

TEST(Tokenizer, CreateRejectsInconsistentSpecs) {
  TokenizerSpec spec;
  spec.tokens = {"a", "b"};
  spec.merges = {"a c"};
  EXPECT_THROW(Tokenizer::create(spec), Error);
  spec.merges = {"a b"};
  spec.eos_id = 7;
  EXPECT_THROW(Tokenizer::create(spec), Error);
  spec.eos_id.reset();
  spec.pre = "unknown-pre";
  EXPECT_THROW(Tokenizer::create(spec), Error);
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  auto tok = load("bpe_llama3");
  const auto expected = tok->encode(kMixed, true);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) mismatches += tok->encode(kMixed, true) != expected;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace shardlm
