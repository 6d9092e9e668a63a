// Everything a tokenizer needs, as plain data. It is filled either from GGUF metadata
// (tokenizer_gguf.cpp) or from a Hugging Face tokenizer.json + tokenizer_config.json
// (tokenizer_json.cpp), so the tokenizer itself does not care where the vocabulary came from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shardlm {

enum class TokenizerKind {
  kByteLevelBpe,  // GPT-2 style: bytes mapped to printable unicode, ranked merges (gguf "gpt2")
  kSentencePieceBpe,  // Llama 2 style: "▁" for spaces, merges by score or rank, <0xXX> byte fallback (gguf "llama")
};

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6
};

struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;
  // Pre-tokenizer name as GGUF stores it (tokenizer.ggml.pre): "gpt2", "smollm", "llama-bpe"
  // (llama3), "qwen2", "default", ... Unknown names are an error at construction.
  std::string pre = "gpt2";
  std::vector<std::string> tokens;      // id -> token text (in the vocabulary's own encoding)
  std::vector<float> scores;            // may be empty (BPE ranks then come from merges)
  std::vector<TokenType> token_types;   // may be empty (all normal)
  std::vector<std::string> merges;      // "a b" pairs in rank order (may be empty for SPM)
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  std::vector<int32_t> extra_eos_ids;   // e.g. <|eot_id|>, <|im_end|> (from generation config / eot)
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;        // SentencePiece: prepend "▁" to the text
  bool byte_fallback = true;            // SentencePiece: unknown chars become <0xXX> tokens
};

}  // namespace shardlm
