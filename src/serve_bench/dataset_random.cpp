// Synthetic prompts: random token ids of exact lengths, alone or after a prefix shared by a group.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "serve_bench/dataset.h"

namespace shardlm::serve_bench {

namespace {

// A length uniform in [len*(1-r), len*(1+r)], at least 1 (vLLM's --random-range-ratio).
int draw_length(int len, double ratio, std::mt19937_64& rng) {
  const int lo = std::max(1, static_cast<int>(std::floor(len * (1 - ratio))));
  const int hi = std::max(lo, static_cast<int>(std::ceil(len * (1 + ratio))));
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

std::vector<int32_t> draw_ids(int n, const std::vector<int32_t>& vocab, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, vocab.size() - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = vocab[pick(rng)];
  return ids;
}

// A sample from ids: exact ids for the completions API, text fitted to the length for chat.
SampleRequest sample_from(std::vector<int32_t> ids, int output_len, const DatasetOptions& o,
                          const PromptTokenizer& tok, const std::vector<int32_t>& vocab,
                          std::mt19937_64& rng) {
  SampleRequest s;
  s.output_len = output_len;
  s.prompt_len = static_cast<int>(ids.size());
  if (o.text_prompts) {
    s.prompt = fit_text(tok, std::move(ids), s.prompt_len, vocab, rng, &s.prompt_len);
  } else {
    s.prompt_ids = std::move(ids);
  }
  return s;
}

int output_length(const DatasetOptions& o, std::mt19937_64& rng) {
  return draw_length(o.output_len > 0 ? o.output_len : 128, o.range_ratio, rng);
}

}  // namespace

std::string fit_text(const PromptTokenizer& tok, std::vector<int32_t> ids, int target,
                     const std::vector<int32_t>& vocab, std::mt19937_64& rng, int* tokens) {
  std::string text = tok.decode(ids), best = text;
  std::vector<int32_t> enc = tok.encode(text);
  int best_len = static_cast<int>(enc.size());
  for (int round = 0; round < 10 && best_len != target; ++round) {
    if (static_cast<int>(enc.size()) > target) {
      enc.resize(static_cast<size_t>(target));
    } else {
      const auto more = draw_ids(target - static_cast<int>(enc.size()), vocab, rng);
      enc.insert(enc.end(), more.begin(), more.end());
    }
    text = tok.decode(enc);
    enc = tok.encode(text);
    if (std::abs(static_cast<int>(enc.size()) - target) < std::abs(best_len - target)) {
      best = text;
      best_len = static_cast<int>(enc.size());
    }
  }
  *tokens = best_len;
  return best;
}

std::vector<SampleRequest> random_dataset(const DatasetOptions& o, const PromptTokenizer& tok) {
  const std::vector<int32_t> vocab = tok.vocabulary();
  std::mt19937_64 rng(o.seed);
  std::vector<SampleRequest> samples;
  for (int i = 0; i < o.num_prompts; ++i) {
    const int in = draw_length(o.input_len, o.range_ratio, rng);
    const int out = output_length(o, rng);
    samples.push_back(sample_from(draw_ids(in, vocab, rng), out, o, tok, vocab, rng));
  }
  return samples;
}

std::vector<SampleRequest> prefix_dataset(const DatasetOptions& o, const PromptTokenizer& tok) {
  if (o.prefix_len < 1) fail("--prefix-len must be at least 1, got {}", o.prefix_len);
  if (o.num_prefixes < 1) fail("--num-prefixes must be at least 1, got {}", o.num_prefixes);
  const std::vector<int32_t> vocab = tok.vocabulary();
  std::mt19937_64 rng(o.seed);
  std::vector<std::vector<int32_t>> prefixes;
  for (int g = 0; g < o.num_prefixes; ++g) prefixes.push_back(draw_ids(o.prefix_len, vocab, rng));
  std::vector<SampleRequest> samples;
  for (int i = 0; i < o.num_prompts; ++i) {  // groups interleaved: i, i + G, ... share a prefix
    std::vector<int32_t> ids = prefixes[static_cast<size_t>(i % o.num_prefixes)];
    const auto suffix = draw_ids(draw_length(o.input_len, o.range_ratio, rng), vocab, rng);
    ids.insert(ids.end(), suffix.begin(), suffix.end());
    samples.push_back(sample_from(std::move(ids), output_length(o, rng), o, tok, vocab, rng));
  }
  return samples;
}

}  // namespace shardlm::serve_bench
