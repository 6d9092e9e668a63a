// Shared helpers for tests: temporary directories and a CPU session over a model.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "engine/generator.h"
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

struct TestSession {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Generator> generator;
};

TestSession make_session(const std::string& model_path, int threads = 2, int max_batch = 64,
                         int max_context = 256);

// The message of the Error that fn throws; "" when it returns. Any other exception escapes (and
// fails the test).
std::string error_of(const std::function<void()>& fn);

// The default model when cached ($SHARDLM_MODEL_DIR or ~/.cache/shardlm/models), else "".
std::string default_model_if_present();

}  // namespace shardlm::testing
