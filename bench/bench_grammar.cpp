// bench_grammar: the per-token cost of grammar-constrained sampling on a model's vocabulary
// (issue 21). For a JSON schema and a valid output of it, the median microseconds per token of
// filling the mask (xgrammar's matcher and the UTF-8 guard), applying it to a logits row and
// accepting the token, and the compile time (first and cached). The engine pays this once per
// constrained row per step; compare with the step's TPOT (bench/structured_output_tpot.py).
//
//   bench_grammar MODEL.gguf|HF_DIR
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/grammar.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

const char* kSchema =
    R"({"type": "object", "properties": {"titles": {"type": "array", "items": {"type": "string"}}},)"
    R"( "required": ["titles"]})";

std::string sample_output() {
  std::string s = R"({"titles": [)";  // xgrammar's separators without free whitespace
  const char* titles[] = {"A Journey Through Time",   "The Last Light of the Northern Sea",
                          "Seven Days in Lisbon",     "What the River Knew",
                          "Notes on a Quiet Machine", "The Cartographer's Daughter"};
  for (int i = 0; i < 12; ++i) s += (i ? ", " : "") + std::string("\"") + titles[i % 6] + "\"";
  return s + "]}";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
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
    const int32_t vocab = model->config.vocab_size;
    std::vector<int32_t> eos;
    for (int32_t i = 0; i < tok->vocab_size(); ++i) {
      if (tok->is_eos(i)) eos.push_back(i);
    }
    shardlm::GrammarCompiler compiler(*tok, vocab, eos);
    const shardlm::GrammarSpec spec{shardlm::GrammarSpec::Kind::kJsonSchema, kSchema, {}};
    auto t = Clock::now();
    auto grammar = compiler.compile(spec);
    const double compile_us = us_since(t);
    t = Clock::now();
    grammar = compiler.compile(spec);
    const double cached_us = us_since(t);
    const std::vector<int32_t> ids = tok->encode(sample_output(), false);
    std::vector<double> fill, apply, accept;
    std::vector<uint32_t> mask;
    std::vector<float> logits(static_cast<size_t>(vocab), 0.5f);
    for (int run = 0; run < 5; ++run) {
      shardlm::GrammarMatcher m(grammar);
      for (const int32_t id : ids) {
        t = Clock::now();
        const bool filled = m.fill_mask(mask);
        fill.push_back(us_since(t));
        t = Clock::now();
        if (filled) shardlm::apply_token_mask(mask, logits.data(), vocab);
        apply.push_back(us_since(t));
        t = Clock::now();
        if (!m.accept(id)) throw std::runtime_error("the grammar refused the sample output");
        accept.push_back(us_since(t));
      }
    }
    const double total = median(fill) + median(apply) + median(accept);
    std::printf("vocab %d, %zu tokens of output x 5 runs\n", vocab, ids.size());
    std::printf(
        "| compile (first) ms | compile (cached) us | fill_mask us | apply us | accept us "
        "| per token us |\n|---|---|---|---|---|---|\n");
    std::printf("| %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", compile_us / 1e3, cached_us,
                median(fill), median(apply), median(accept), total);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_grammar: %s\n", e.what());
    return 1;
  }
  return 0;
}
