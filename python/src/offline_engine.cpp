// OfflineEngine: the LLM (alone or as a group's master), the batch loop and the tokenizer calls.
#include "offline_engine.h"

#include <nlohmann/json.hpp>

#include "comm/local_addresses.h"
#include "core/error.h"
#include "model/chat_template_source.h"
#include "server/worker_node.h"
#include "template/chat_template.h"

namespace shardlm::python {

LaunchPlace resolve_place(const parallel::LaunchFlags& flags, const parallel::Environment& env) {
  return {parallel::resolve_launch(flags, env, comm::machine_identities()), flags};
}

OfflineEngine::OfflineEngine(EngineArgs args, const std::optional<LaunchPlace>& group) {
  args.show_progress = false;  // Python shows its own (tqdm)
  if (group && group->info.world_size > 1) {
    group_ = std::make_shared<parallel::Group>(
        parallel::GroupOptions::from_launch(group->info, group->flags));
    args.make_runner = server::group_master_runner(group_);
  }
  try {
    llm_ = std::make_unique<LLM>(args);
  } catch (const std::exception& e) {
    if (group_) group_->abort_startup(e.what());  // the waiting ranks stop now, told why
    throw;
  }
}

// The runner (destroyed with the LLM) ends the group: the other ranks exit.
OfflineEngine::~OfflineEngine() = default;

namespace {

// Appends one step's tokens, texts and finished prompts to `out` (request id - first = index).
size_t collect(StepOutput& step, int64_t first, std::vector<BatchOutput>& out) {
  for (TokenEvent& t : step.tokens) {
    BatchOutput& o = out[static_cast<size_t>(t.request_id - first)];
    o.text += t.text;
    if (t.logprobs) o.logprobs.push_back(std::move(*t.logprobs));
  }
  for (FinishedRequest& f : step.finished) {
    BatchOutput& o = out[static_cast<size_t>(f.id - first)];
    o.text += f.final_text;
    o.prompt_token_ids = std::move(f.prompt);
    o.token_ids = std::move(f.output);
    o.finish_reason = to_string(f.reason);
  }
  return step.finished.size();
}

}  // namespace

std::vector<BatchOutput> OfflineEngine::generate(const std::vector<std::vector<int32_t>>& prompts,
                                                 const std::vector<SamplingParams>& params,
                                                 const StepHook& hook) {
  if (params.size() != 1 && params.size() != prompts.size()) {
    throw InvalidRequest(fmt::format("sampling_params has {} entries for {} prompts; give one, or "
                                     "one per prompt",
                                     params.size(), prompts.size()),
                         "sampling_params");
  }
  Engine& engine = llm_->engine();
  auto params_of = [&](size_t i) -> const SamplingParams& {
    return params.size() == 1 ? params[0] : params[i];
  };
  // Validated once, all before any is queued (an invalid prompt queues none).
  for (size_t i = 0; i < prompts.size(); ++i) {
    validate_request(engine.limits(), prompts[i], params_of(i));
  }
  const int64_t n = static_cast<int64_t>(prompts.size());
  const int64_t first = engine.new_request_ids(n);
  for (int64_t i = 0; i < n; ++i) {
    engine.add_validated_request(first + i, prompts[static_cast<size_t>(i)],
                                 params_of(static_cast<size_t>(i)));
  }
  std::vector<BatchOutput> out(prompts.size());
  size_t finished = 0;
  bool stopping = false;
  while (engine.has_unfinished()) {
    StepOutput step = engine.step();
    finished += collect(step, first, out);
    if (stopping || !hook || hook(finished)) continue;
    stopping = true;  // every prompt still running ends as "abort" in the next step
    for (int64_t i = 0; i < n; ++i) engine.abort_request(first + i);
  }
  return out;
}

std::vector<int32_t> OfflineEngine::encode(const std::string& text, bool add_special) const {
  return llm_->tokenizer().encode(text, add_special, true);
}

std::string OfflineEngine::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const int32_t vocab = vocab_size();
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) {
      throw InvalidRequest(
          fmt::format("token id {} is outside the vocabulary (0..{})", id, vocab - 1),
          "token_ids");
    }
  }
  return llm_->tokenizer().decode(ids, skip_special);
}

std::string OfflineEngine::apply_chat_template(const std::string& messages_json,
                                               bool add_generation_prompt,
                                               const std::string& extra_json) const {
  const ChatTemplateInfo info = chat_template_info(llm_->model());
  const ChatTemplate tmpl(info.source.value_or(ChatTemplate::chatml_default()));
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  if (!extra_json.empty()) context = nlohmann::ordered_json::parse(extra_json);
  context["messages"] = nlohmann::ordered_json::parse(messages_json);
  context["add_generation_prompt"] = add_generation_prompt;
  context["bos_token"] = info.bos_token;
  context["eos_token"] = info.eos_token;
  return tmpl.render(context);
}

std::string OfflineEngine::token_text(int32_t id) const {
  return llm_->tokenizer().token_bytes(id, true);
}

int32_t OfflineEngine::vocab_size() const { return llm_->tokenizer().vocab_size(); }

int OfflineEngine::max_model_len() const {
  return llm_->engine().config().scheduler.max_model_len;
}

std::optional<int32_t> OfflineEngine::eos_token_id() const {
  return llm_->tokenizer().spec().eos_id;
}

}  // namespace shardlm::python
