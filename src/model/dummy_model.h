// `--load-format dummy`: a model of a named architecture or a config.json with deterministic
// random BF16 weights generated in memory instead of read from a file, so that a large
// architecture can be benchmarked without its checkpoint (vLLM's `--load-format dummy`). Every rank
// generates the same values, so groups shard it like a real model.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"

namespace shardlm {

// `what` is a preset name (model_presets.h), a config.json file, or a directory holding one (its
// tokenizer.json and chat template are used when present; otherwise a byte-level vocabulary).
std::unique_ptr<Model> load_dummy_model(const std::string& what);

}  // namespace shardlm
