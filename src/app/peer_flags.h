// Flags of the engines shardlm replaces (vLLM, SGLang, TensorRT-LLM's trtllm-serve, FastDeploy),
// so that their launch commands run unchanged. Those that are another name for one of serve's own
// flags are registered on that flag (flag_names.h). The rest are here:
// - the same effect by another route: --disable-log-stats (--log-interval 0, whatever the
//   command line's --log-interval), --log-level,
//   --disable-custom-all-reduce (SHARDLM_CUSTOM_ALLREDUCE=0), --chunked-prefill-size (the step's
//   token budget; -1 keeps chunking), --chat-template, --generation-config / --sampling-defaults
//   and --seed (server/request_defaults.h), --enable-auto-tool-choice (with --tool-call-parser);
// - knobs that shardlm sets itself or that mean nothing here (attention backends, CUDA-graph batch
//   sizes, torch.compile, swap space, ...): accepted, each named in a start-up log line with what
//   shardlm does instead;
// - ones whose meaning shardlm cannot honour: refused at start-up saying what to drop.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace shardlm::app {

// The serve options the peer flags write (doctor gives places it ignores).
struct PeerFlagTargets {
  int& max_num_batched_tokens;
  bool& disable_log_stats;  // vLLM's --log-interval 0, applied after parsing so it wins
  std::string& chat_template;      // --chat-template: a file, or the template itself
  std::string& generation_config;  // auto | vllm | a directory
  std::optional<uint64_t>& seed;
  bool& enable_auto_tool_choice;
};

void add_peer_flags(CLI::App& cmd, const PeerFlagTargets& t);

// `serve MODEL` (vllm serve, trtllm-serve): the positional model goes to `model`; an Error when
// --model names another.
void take_model_tag(const std::string& tag, std::string& model);

// vLLM refuses --enable-auto-tool-choice without --tool-call-parser; so does shardlm.
void check_auto_tool_choice(bool enabled, const std::string& tool_call_parser);

}  // namespace shardlm::app
