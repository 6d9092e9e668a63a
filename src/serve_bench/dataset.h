// The prompts of a serving benchmark: `random` (token ids of exact lengths), `prefix` (groups of
// prompts sharing a long common prefix, for prefix caching), `sharegpt` (a ShareGPT-format JSON
// file) and `jsonl` (one prompt per line). Lengths are measured with the server's tokenizer.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "serve_bench/prompt_tokenizer.h"

namespace shardlm::serve_bench {

struct SampleRequest {
  std::string prompt;               // the text (always set when the API needs text)
  std::vector<int32_t> prompt_ids;  // exact ids, sent as the prompt to /v1/completions when set
  int prompt_len = 0;               // tokens, as the tokenizer counts them
  int output_len = 0;               // max_tokens to ask for
};

struct DatasetOptions {
  std::string name = "random";  // random | prefix | sharegpt | jsonl
  std::string path;             // file for sharegpt and jsonl
  int num_prompts = 100;
  int input_len = 1024;       // random: prompt tokens; prefix: tokens after the shared prefix
  int output_len = 0;         // 0 = sharegpt's reference answer length, jsonl's or 128
  double range_ratio = 0;     // random/prefix: lengths uniform in [len*(1-r), len*(1+r)]
  int prefix_len = 256;       // prefix: tokens shared by each group
  int num_prefixes = 4;       // prefix: number of groups
  bool text_prompts = false;  // the API takes text only (chat): random prompts are decoded
  uint64_t seed = 0;
};

// Throws Error naming the flag or file (and line) that is wrong.
std::vector<SampleRequest> make_dataset(const DatasetOptions& options,
                                        const PromptTokenizer& tokenizer);

// The parts, for make_dataset and the tests.
std::vector<SampleRequest> random_dataset(const DatasetOptions& options,
                                          const PromptTokenizer& tokenizer);
std::vector<SampleRequest> prefix_dataset(const DatasetOptions& options,
                                          const PromptTokenizer& tokenizer);
std::vector<SampleRequest> sharegpt_dataset(const DatasetOptions& options,
                                            const PromptTokenizer& tokenizer);
std::vector<SampleRequest> jsonl_dataset(const DatasetOptions& options,
                                         const PromptTokenizer& tokenizer);

// Text whose encoding is as close to target tokens as a few rounds of decode, re-encode, trim or
// extend with ids drawn from vocabulary get it (usually exact); *tokens receives the final count.
std::string fit_text(const PromptTokenizer& tokenizer, std::vector<int32_t> ids, int target,
                     const std::vector<int32_t>& vocabulary, std::mt19937_64& rng, int* tokens);

}  // namespace shardlm::serve_bench
