// GPT-2's byte-level alphabet (each byte as a printable code point) and a tokenizer made of it
// alone: the vocabulary of models that come without one (dummy weights for benchmarks, tests).
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace shardlm {

// byte b -> its UTF-8 token text under GPT-2's reversible byte <-> code point map.
std::vector<std::string> gpt2_byte_tokens();

// A byte-level BPE without merges: ids 0..255 are the bytes, then "<|endoftext|>" (EOS), then
// "<|extra_N|>" up to `vocab` tokens. Needs vocab >= 257.
TokenizerSpec byte_level_spec(int vocab);

}  // namespace shardlm
