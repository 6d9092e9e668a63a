// A local model's tokenizer for --tokenizer PATH.
#include "model/model.h"
#include "serve_bench/prompt_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace shardlm::serve_bench {

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
    if (!tokenizer_->is_special(id)) ids.push_back(id);
  }
  return ids;
}

}  // namespace shardlm::serve_bench
