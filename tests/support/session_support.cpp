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

TestSession make_session(const std::string& model_path, int threads, int max_batch, int max_context,
                         const std::function<void(Model&)>& adjust) {
  TestSession s;
  std::unique_ptr<Model> model = load_model(model_path);
  if (adjust) adjust(*model);
  EngineArgs args;
  args.model = model_path;
  args.device = "cpu";
  args.threads = threads;
  args.max_num_batched_tokens = max_batch;
  args.max_model_len = max_context;
  args.num_kv_blocks = (max_context + args.block_size - 1) / args.block_size;
  args.show_progress = false;
  s.llm = std::make_unique<LLM>(args, std::move(model));
  s.model = &s.llm->model();
  s.tokenizer = &s.llm->tokenizer();
  return s;
}

std::vector<int32_t> generate_ids(LLM& llm, const std::vector<int32_t>& prompt,
                                  const SamplingParams& params) {
  return llm.generate(std::vector<std::vector<int32_t>>{prompt}, params)[0].token_ids;
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
