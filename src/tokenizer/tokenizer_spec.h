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
  kByteLevelBpe,      // GPT-2 style: bytes mapped to printable unicode, ranked merges (gguf "gpt2")
  kSentencePieceBpe,  // Llama 2 style: "▁" for spaces, merges by score or rank, <0xXX> byte
                      // fallback (gguf "llama")
};

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

// Where a SentencePiece tokenizer puts the "▁" that add_space_prefix asks for. Text segments are
// the stretches between special/added tokens.
enum class SpacePrefixMode {
  kEverySegment,  // always, before every segment: llama.cpp, HF legacy Prepend("▁") normalizer
  kEverySegmentUnlessSpace,  // HF Metaspace prepend_scheme "always": not if it starts with a space
  kFirstSegmentUnlessSpace,  // HF Metaspace prepend_scheme "first": only at the very start of the
                             // text
};

struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;
  // Pre-tokenizer name as GGUF stores it (tokenizer.ggml.pre): "gpt2", "smollm", "llama-bpe"
  // (llama3), "qwen2", "default", ... Unknown names are an error at construction.
  std::string pre = "gpt2";
  // When not empty, these regexes (applied in order, each splitting the pieces of the previous one,
  // matches and the text between them both kept) replace the named pre-tokenizer; used for
  // tokenizer.json Split patterns that have no GGUF name. PCRE2 syntax.
  std::vector<std::string> pre_regexes;
  std::vector<std::string> tokens;     // id -> token text (in the vocabulary's own encoding)
  std::vector<float> scores;           // may be empty (BPE ranks then come from merges)
  std::vector<TokenType> token_types;  // may be empty (all normal)
  std::vector<std::string> merges;     // "a b" pairs in rank order (may be empty for SPM)
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  std::vector<int32_t> extra_eos_ids;  // e.g. <|eot_id|>, <|im_end|> (from generation config / eot)
  bool add_bos = false;
  bool add_eos = false;
  // SentencePiece: prepend "▁" to the text (see space_prefix_mode). Byte-level: prepend " " to
  // every segment that does not start with one (HF ByteLevel add_prefix_space).
  bool add_space_prefix = false;
  SpacePrefixMode space_prefix_mode = SpacePrefixMode::kEverySegment;
  bool byte_fallback = true;  // SentencePiece: unknown chars become <0xXX> tokens
  // A pre-tokenized piece that is itself a token is emitted whole, without merging (HF BPE
  // ignore_merges; llama.cpp does this for "llama-bpe"). GGUF: set it for pre == "llama-bpe".
  bool ignore_merges = false;
  // Unicode NFC before pre-tokenizing, as Qwen2's tokenizer.json asks (HF NFC normalizer). GGUF has
  // no such key and llama.cpp skips it; it only matters for text that is not already NFC.
  bool normalize_nfc = false;
};

}  // namespace shardlm
