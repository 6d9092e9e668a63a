// The tokenizer a benchmark measures prompts with: the server's own (POST /tokenize and
// /detokenize) or a local model's (--tokenizer PATH). Datasets use it to build prompts of exact
// token lengths; the runner uses it to count output tokens when the server reports no usage.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "serve_bench/http_endpoint.h"

namespace shardlm {
class Tokenizer;
struct Model;
}  // namespace shardlm

namespace shardlm::serve_bench {

class PromptTokenizer {
 public:
  virtual ~PromptTokenizer() = default;
  // The ids of text as it counts inside a prompt: no BOS/EOS added.
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // Ordinary (not control) tokens to draw random prompts from; never empty.
  virtual std::vector<int32_t> vocabulary() const = 0;
};

// The server's tokenizer. Throws Error naming the URL when the server has no /tokenize.
class RemoteTokenizer : public PromptTokenizer {
 public:
  RemoteTokenizer(Endpoint endpoint, std::string model);
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  // The distinct ids of a built-in English passage: real words, no control tokens.
  std::vector<int32_t> vocabulary() const override;

 private:
  std::vector<int32_t> tokenize(const std::string& text) const;

  Endpoint endpoint_;
  std::string model_;
  std::vector<int32_t> added_;  // ids the server adds to any text (BOS), stripped from encode()
};

// A local model's tokenizer (GGUF file or Hugging Face directory).
class LocalTokenizer : public PromptTokenizer {
 public:
  explicit LocalTokenizer(const std::string& model_path);
  ~LocalTokenizer() override;
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  // The ids that are not control tokens and decode to plain text (whole UTF-8 characters).
  std::vector<int32_t> vocabulary() const override;

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace shardlm::serve_bench
