// tokenizer.ggml.model selects the kind ("gpt2" byte-level BPE, "llama" SentencePiece BPE);
// tokens, scores, token types, merges and special ids come from the matching keys.
#include "tokenizer/tokenizer_gguf.h"

#include "core/error.h"

namespace shardlm {

namespace {

std::optional<int32_t> id_key(const GgufFile& g, const std::string& key, size_t vocab) {
  auto v = g.get_int(key);
  if (!v) return std::nullopt;
  if (*v < 0 || static_cast<size_t>(*v) >= vocab) {
    // Some converters write -1 or an out-of-range id to mean "none".
    return std::nullopt;
  }
  return static_cast<int32_t>(*v);
}

void read_vocab(const GgufFile& g, TokenizerSpec& spec) {
  const auto* tokens = g.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty()) {
    fail("'{}': no tokenizer.ggml.tokens in the metadata; this GGUF file has no vocabulary",
         g.path());
  }
  spec.tokens = *tokens;
  if (const auto* scores = g.get_float_array("tokenizer.ggml.scores")) {
    if (scores->size() != tokens->size()) {
      fail("'{}': tokenizer.ggml.scores has {} entries but there are {} tokens", g.path(),
           scores->size(), tokens->size());
    }
    spec.scores.assign(scores->begin(), scores->end());
  }
  if (const auto* types = g.get_int_array("tokenizer.ggml.token_type")) {
    if (types->size() != tokens->size()) {
      fail("'{}': tokenizer.ggml.token_type has {} entries but there are {} tokens", g.path(),
           types->size(), tokens->size());
    }
    for (int64_t t : *types) {
      spec.token_types.push_back(t >= 0 && t <= 6 ? static_cast<TokenType>(t) : TokenType::kNormal);
    }
  }
  if (const auto* merges = g.get_string_array("tokenizer.ggml.merges")) spec.merges = *merges;
}

}  // namespace

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& g) {
  TokenizerSpec spec;
  const std::string model = g.get_string("tokenizer.ggml.model").value_or("");
  if (model == "gpt2") {
    spec.kind = TokenizerKind::kByteLevelBpe;
  } else if (model == "llama") {
    spec.kind = TokenizerKind::kSentencePieceBpe;
  } else {
    fail(
        "'{}': tokenizer.ggml.model is '{}'; shardlm supports 'gpt2' (byte-level BPE) and 'llama' "
        "(SentencePiece BPE)",
        g.path(), model);
  }
  read_vocab(g, spec);
  const size_t n = spec.tokens.size();
  spec.pre = g.get_string("tokenizer.ggml.pre").value_or("default");
  spec.bos_id = id_key(g, "tokenizer.ggml.bos_token_id", n);
  spec.eos_id = id_key(g, "tokenizer.ggml.eos_token_id", n);
  spec.unk_id = id_key(g, "tokenizer.ggml.unknown_token_id", n);
  spec.pad_id = id_key(g, "tokenizer.ggml.padding_token_id", n);
  if (auto eot = id_key(g, "tokenizer.ggml.eot_token_id", n); eot && eot != spec.eos_id) {
    spec.extra_eos_ids.push_back(*eot);
  }
  const bool spm = spec.kind == TokenizerKind::kSentencePieceBpe;
  spec.add_bos = g.get_bool("tokenizer.ggml.add_bos_token").value_or(spm);
  spec.add_eos = g.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  // llama.cpp reads add_space_prefix only for SentencePiece vocabularies.
  spec.add_space_prefix = spm && g.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  spec.byte_fallback = spm;
  // Llama 3 tokenizers look whole pre-tokens up in the vocabulary before merging (HF
  // ignore_merges); llama.cpp does the same for the "llama-bpe" pre-tokenizer.
  spec.ignore_merges = spec.pre == "llama-bpe";
  return spec;
}

}  // namespace shardlm
