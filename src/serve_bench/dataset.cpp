// Dataset dispatch and the checks every dataset shares.
#include "serve_bench/dataset.h"

#include "core/error.h"

namespace shardlm::serve_bench {

namespace {

void check_options(const DatasetOptions& o) {
  if (o.num_prompts < 1) fail("--num-prompts must be at least 1, got {}", o.num_prompts);
  if (o.input_len < 1) fail("--input-len must be at least 1, got {}", o.input_len);
  if (o.output_len < 0) fail("--output-len must be at least 1, got {}", o.output_len);
  if (!(o.range_ratio >= 0 && o.range_ratio < 1)) {
    fail("--range-ratio must be in [0, 1), got {}", o.range_ratio);
  }
}

}  // namespace

std::vector<SampleRequest> make_dataset(const DatasetOptions& o, const PromptTokenizer& tokenizer) {
  check_options(o);
  if (o.name == "random") return random_dataset(o, tokenizer);
  if (o.name == "prefix") return prefix_dataset(o, tokenizer);
  if ((o.name == "sharegpt" || o.name == "jsonl") && o.path.empty()) {
    fail("--dataset {} needs --dataset-path FILE", o.name);
  }
  if (o.name == "sharegpt") return sharegpt_dataset(o, tokenizer);
  if (o.name == "jsonl") return jsonl_dataset(o, tokenizer);
  fail("unknown --dataset '{}': use random, prefix, sharegpt or jsonl", o.name);
}

}  // namespace shardlm::serve_bench
