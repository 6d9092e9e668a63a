// bench_tokenizer: encode time of a model's tokenizer over prompts from 1 KB to 256 KB of mixed
// text (scripts, emoji, code), per byte: a flat column means encoding stays linear in the input
// (the property a quadratic pre-tokenizer or merge loop would break). Median of 20 runs.
//
//   bench_tokenizer MODEL.gguf|HF_DIR
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

const char* kMixed =
    "Hello, 世界! 😀👍🏽 naïve café\n\tcode: x = fib(10) + 123456;  ¿qué? 🇫🇷 "
    "e\u0301 "
    "The quick brown fox jumps over the lazy dog. ";

double median_us(const shardlm::Tokenizer& tok, const std::string& text) {
  std::vector<double> t;
  for (int i = 0; i < 21; ++i) {
    const auto a = std::chrono::steady_clock::now();
    tok.encode(text, false);
    t.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin() + 1, t.end());  // the first run warms up
  return t[11];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf|HF_DIR\n", argv[0]);
    return 2;
  }
  try {
    const auto model = shardlm::load_model(argv[1]);
    const auto tok = shardlm::Tokenizer::create(model->tokenizer);
    std::printf("| prompt bytes | tokens | encode us | us per KB |\n|---|---|---|---|\n");
    for (size_t kb : {1, 4, 16, 64, 256}) {
      std::string text;
      while (text.size() < kb * 1024) text += kMixed;
      const double us = median_us(*tok, text);
      std::printf("| %zu | %zu | %.0f | %.1f |\n", text.size(), tok->encode(text, false).size(), us,
                  us / (static_cast<double>(text.size()) / 1024));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
