// A local model's tokenizer for --tokenizer PATH.
#include <algorithm>

#include "core/utf8.h"
#include "model/model.h"
#include "serve_bench/prompt_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace shardlm::serve_bench {

namespace {

// Text a random prompt can hold: whole UTF-8 characters, no control bytes but tab and newline
// (lone bytes of a multi-byte character would decode to U+FFFD and re-encode differently).
bool plain_text(const std::string& bytes) {
  if (bytes.empty() || !utf8::is_valid(bytes)) return false;
  return std::none_of(bytes.begin(), bytes.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t';
  });
}

}  // namespace

LocalTokenizer::LocalTokenizer(const std::string& model_path)
    : model_(load_model(model_path)), tokenizer_(Tokenizer::create(model_->tokenizer)) {}

LocalTokenizer::~LocalTokenizer() = default;

std::vector<int32_t> LocalTokenizer::encode(const std::string& text) const {
  return tokenizer_->encode(text, false, true);
}

std::string LocalTokenizer::decode(const std::vector<int32_t>& ids) const {
  return tokenizer_->decode(ids, false);
}

std::vector<int32_t> LocalTokenizer::vocabulary() const {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tokenizer_->vocab_size(); ++id) {
    if (!tokenizer_->is_special(id) && plain_text(tokenizer_->token_bytes(id, false))) {
      ids.push_back(id);
    }
  }
  return ids;
}

}  // namespace shardlm::serve_bench
