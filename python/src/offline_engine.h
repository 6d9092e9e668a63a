// The engine behind the Python LLM: a shardlm::LLM (one process, or rank 0 of a group whose other
// ranks run elsewhere) and the batch loop Python drives: per-prompt sampling settings, the text the
// engine decided (stop strings honoured), log-probabilities, and a hook after every step that
// reports progress and can stop the batch (Ctrl-C). No Python types here: py_engine.cpp binds it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/llm.h"
#include "parallel/group.h"
#include "parallel/launch_env.h"

namespace shardlm::python {

struct BatchOutput {
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> token_ids;
  std::string text;
  std::string finish_reason;                     // "stop", "length" or "abort"
  std::vector<TokenLogprobs> logprobs;           // per output token, when asked for
};

// Called after every engine step with the number of prompts finished so far; returns false to
// stop the batch (every unfinished prompt ends with finish_reason "abort").
using StepHook = std::function<bool(size_t finished)>;

// Where this process sits in a group (from parallel::resolve_launch over the given flags and
// environment), for the Python side to decide which ranks to start here.
struct LaunchPlace {
  parallel::LaunchInfo info;
  parallel::LaunchFlags flags;
};
LaunchPlace resolve_place(const parallel::LaunchFlags& flags, const parallel::Environment& env);

class OfflineEngine {
 public:
  // group: rank 0 of a group (this process is the master); nullopt for one process.
  OfflineEngine(EngineArgs args, const std::optional<LaunchPlace>& group);
  ~OfflineEngine();

  // Runs every prompt to the end (continuous batching); params has one entry, or one per prompt.
  // Validates every prompt first (InvalidRequest names the field) and queues none on a failure.
  std::vector<BatchOutput> generate(const std::vector<std::vector<int32_t>>& prompts,
                                    const std::vector<SamplingParams>& params,
                                    const StepHook& hook);

  std::vector<int32_t> encode(const std::string& text, bool add_special) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const;
  // Renders the model's chat template (ChatML when it ships none) over `messages_json` (a JSON
  // array of {"role", "content"} objects); extra_json: more template variables (a JSON object).
  std::string apply_chat_template(const std::string& messages_json, bool add_generation_prompt,
                                  const std::string& extra_json) const;
  std::string token_text(int32_t id) const;
  int32_t vocab_size() const;
  int max_model_len() const;
  std::optional<int32_t> eos_token_id() const;

 private:
  std::shared_ptr<parallel::Group> group_;  // outlives llm_, whose runner uses it
  std::unique_ptr<LLM> llm_;
};

}  // namespace shardlm::python
