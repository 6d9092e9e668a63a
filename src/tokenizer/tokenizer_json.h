// Reads a Hugging Face tokenizer.json (and the tokenizer_config.json / generation_config.json
// beside it, when present) into a TokenizerSpec.
#pragma once

#include <string>

#include "tokenizer/tokenizer_spec.h"

namespace shardlm {

// dir_or_file: a model directory holding tokenizer.json, or the tokenizer.json itself. Throws Error
// naming the file and the setting when the file is missing, malformed or uses a configuration
// shardlm does not support (e.g. a Unigram or WordPiece model, an unknown normalizer).
TokenizerSpec load_tokenizer_json(const std::string& dir_or_file);

}  // namespace shardlm
