// Test helpers (see tests/unit/test_support.h).
#include <unistd.h>

#include <atomic>

#include "app/default_model.h"
#include "core/error.h"
#include "test_support.h"

namespace shardlm::testing {

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  dir_ = std::filesystem::temp_directory_path() /
         ("shardlm-test-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string TempDir::path(const std::string& name) const {
  return (dir_ / name).string();
}

TestSession make_session(const std::string& model_path, int threads, int max_batch,
                         int max_context) {
  TestSession s;
  s.model = load_model(model_path);
  s.tokenizer = Tokenizer::create(s.model->tokenizer);
  s.backend = std::make_unique<CpuBackend>(
      CpuBackendOptions::for_model(s.model->config, threads, max_batch, max_context));
  GeneratorOptions g;
  g.max_context = max_context;
  g.max_batch_tokens = max_batch;
  s.generator = std::make_unique<Generator>(*s.model, *s.tokenizer, *s.backend, g);
  return s;
}

std::string default_model_if_present() {
  const std::string p = app::default_model_path();
  return std::filesystem::exists(p) ? p : "";
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace shardlm::testing
