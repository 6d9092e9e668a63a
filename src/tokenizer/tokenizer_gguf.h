// Builds a TokenizerSpec from GGUF metadata (tokenizer.ggml.*).
#pragma once

#include "formats/gguf_file.h"
#include "tokenizer/tokenizer_spec.h"

namespace shardlm {

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& gguf);

}  // namespace shardlm
