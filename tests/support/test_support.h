// Shared helpers for tests: temporary directories and a CPU session over a model.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "engine/llm.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace shardlm::testing {

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  std::string path(const std::string& name = "") const;

 private:
  std::filesystem::path dir_;
};

// An LLM on the CPU over a model, with a cache of one max_context sequence (prompt_logits, one
// generate at a time); model and tokenizer are the LLM's.
struct TestSession {
  std::unique_ptr<LLM> llm;
  const Model* model = nullptr;
  const Tokenizer* tokenizer = nullptr;
};

// adjust, when given, changes the loaded model before the LLM is built over it.
TestSession make_session(const std::string& model_path, int threads = 2, int max_batch = 64,
                         int max_context = 256,
                         const std::function<void(Model&)>& adjust = nullptr);

// The tokens generate gives for one prompt.
std::vector<int32_t> generate_ids(LLM& llm, const std::vector<int32_t>& prompt,
                                  const SamplingParams& params);

// The message of the Error that fn throws; "" when it returns. Any other exception escapes (and
// fails the test).
std::string error_of(const std::function<void()>& fn);

// The default model when cached ($SHARDLM_MODEL_DIR or ~/.cache/shardlm/models), else "".
std::string default_model_if_present();

}  // namespace shardlm::testing
