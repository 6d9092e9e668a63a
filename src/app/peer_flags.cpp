// Other engines' flags: the same effect by another route, accepted knobs, refusals.
#include "app/peer_flags.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <functional>

#include "core/error.h"

namespace shardlm::app {

namespace {

constexpr const char* kGroup = "Other engines' flags (accepted so that their commands run)";

// Another engine's flag: its CLI11 names (the first is the one logged), whether it takes values,
// and what shardlm does instead (a knob: accepted, logged) or why it is refused.
struct PeerFlag {
  const char* names;
  bool takes_value;
  const char* text;
};

// Accepted without acting on them; the text says what shardlm does instead.
constexpr PeerFlag kKnobs[] = {
    {"--trust-remote-code,--trust_remote_code", false,
     "it runs no code from a checkpoint, only its own architectures"},
    {"--engine-worker-queue-port", true, "ranks talk through --dist-init-addr and Gloo/NCCL"},
    {"--disable-log-requests", false, "it does not log requests' contents"},
    {"--enable-prefix-caching", false, "prefix caching is on unless --no-prefix-caching"},
    {"--enable-chunked-prefill", false,
     "prompts are always prefilled in chunks of --max-num-batched-tokens"},
    {"--dtype", true,
     "weights run as stored (FP8 with --quantization fp8); activations are BF16 on CUDA and fp32 "
     "on the CPU"},
    {"--swap-space", true, "preempted requests are recomputed, not swapped to host memory"},
    {"--max-seq-len-to-capture", true, "decode steps are captured as CUDA graphs at any length"},
    {"--tokenizer-mode", true, "it reads tokenizer.json or the GGUF vocabulary itself"},
    {"--uvicorn-log-level", true, "its HTTP server logs at --log-level"},
    {"--num-scheduler-steps", true, "it schedules every step"},
    {"--max-log-len", true, "it does not log prompts"},
    {"--disable-frontend-multiprocessing", false, "the HTTP server and engine share one process"},
    {"--attention-backend", true, "it picks its attention kernels per step"},
    {"--sampling-backend", true, "it samples with its own kernels"},
    {"--cuda-graph-max-bs,--cuda-graph-bs", true,
     "decode steps are captured as CUDA graphs at each batch size as it first runs"},
    {"--enable-torch-compile", false, "it runs compiled C++/CUDA kernels"},
    {"--torch-compile-max-bs", true, "it runs compiled C++/CUDA kernels"},
    {"--schedule-policy", true, "requests are scheduled first come, first served"},
    {"--schedule-conservativeness", true, "requests are scheduled first come, first served"},
    {"--enable-mixed-chunk", false, "prefill chunks and decodes always share steps"},
    {"--disable-overlap-schedule", false, "its step loop does not overlap scheduling"},
    {"--max-prefill-tokens", true, "a step's tokens are bounded by --max-num-batched-tokens"},
    {"--stream-interval", true, "streams send every token as it is sampled"},
    {"--enable-metrics", false, "/metrics is always served"},
    {"--enable-p2p-check", false, "its group checks the links at start-up itself"},
    {"--speculative-algorithm,--speculative-config,--speculative-draft-model-path", true,
     "speculative decoding is not built: it decodes without a draft model"},
    {"--kv-cache-ratio", true,
     "the KV cache takes what --gpu-memory-utilization leaves after weights and activations"},
    {"--kv_cache_free_gpu_memory_fraction", true,
     "the KV cache takes what --gpu-memory-utilization leaves after weights and activations"},
    {"--backend", true, "shardlm is its own runtime"},
    {"--gpus_per_node", true, "a rank's place comes from the launcher (mpirun, srun, --nnodes)"},
    {"--num_postprocess_workers", true, "detokenising runs on the engine's stream threads"},
};

// Flags whose meaning shardlm cannot honour; the text says what to do instead.
constexpr PeerFlag kRefusals[] = {
    // SGLang's DeepSeek commands add it, and with it their --dp N means N attention groups inside
    // --tp, where shardlm's --dp N starts N whole replicas.
    {"--enable-dp-attention", false,
     "SGLang's data-parallel attention is not supported: drop the flag (attention stays "
     "tensor-parallel; --enable-expert-parallel shards the experts over the --tp ranks). Under "
     "SGLang it makes --dp N mean N attention groups inside --tp; shardlm's --dp N starts N whole "
     "replicas, so drop that --dp as well"},
    {"--enable-lora", false,
     "LoRA adapters are not supported: serve a checkpoint with the adapter merged into it"},
    {"--lora-modules,--lora-paths", true,
     "LoRA adapters are not supported: serve a checkpoint with the adapter merged into it"},
    {"--extra_llm_api_options", true,
     "shardlm reads no LLM API options file: give its settings as serve's flags (shardlm serve "
     "--help)"},
};

std::string first_name(const char* names) {
  const std::string all = names;
  return all.substr(0, all.find(','));
}

// Registers f with `act` run when it is given (with any values it takes).
void add_peer_flag(CLI::App& cmd, const PeerFlag& f, const std::string& help,
                   std::function<void()> act) {
  if (f.takes_value) {
    cmd.add_option_function<std::vector<std::string>>(
           f.names, [act](const std::vector<std::string>&) { act(); }, help)
        ->group(kGroup);
  } else {
    cmd.add_flag_callback(f.names, act, help)->group(kGroup);
  }
}

void add_knob(CLI::App& cmd, const PeerFlag& k) {
  add_peer_flag(cmd, k, std::string("accepted; no effect: ") + k.text,
                [name = first_name(k.names), instead = std::string(k.text)] {
                  spdlog::info("{} has no effect in shardlm: {}", name, instead);
                });
}

void add_refusal(CLI::App& cmd, const PeerFlag& r) {
  add_peer_flag(cmd, r, std::string("refused: ") + r.text,
                [name = first_name(r.names), why = std::string(r.text)] {
                  throw CLI::ValidationError(name, why);
                });
}

// SGLang's --log-level / trtllm-serve's --log_level, as spdlog's levels.
void set_log_level(const std::string& level) {
  if (level == "debug" || level == "verbose" || level == "trace") {
    spdlog::set_level(spdlog::level::debug);
  } else if (level == "info") {
    spdlog::set_level(spdlog::level::info);
  } else if (level == "warning" || level == "warn") {
    spdlog::set_level(spdlog::level::warn);
  } else if (level == "error") {
    spdlog::set_level(spdlog::level::err);
  } else {
    spdlog::set_level(spdlog::level::critical);
  }
}

void add_effect_flags(CLI::App& cmd, const PeerFlagTargets& t) {
  cmd.add_flag("--disable-log-stats", t.disable_log_stats,
               "vLLM's name for --log-interval 0: no periodic stats lines")
      ->group(kGroup);
  cmd.add_option_function<std::string>(
         "--log-level,--log_level", set_log_level,
         "debug, info, warning, error or critical (SGLang, trtllm-serve): the log's level")
      ->check(CLI::IsMember(
          {"trace", "verbose", "debug", "info", "warning", "warn", "error", "critical"}))
      ->group(kGroup);
  cmd.add_flag_callback(
         "--disable-custom-all-reduce", [] { ::setenv("SHARDLM_CUSTOM_ALLREDUCE", "0", 1); },
         "tensor-parallel all-reduces on CUDA always go through NCCL "
         "(SHARDLM_CUSTOM_ALLREDUCE=0)")
      ->group(kGroup);
  cmd.add_option_function<int>(
         "--chunked-prefill-size",
         [t](int n) {
           if (n > 0) {
             t.max_num_batched_tokens = n;
           } else {
             spdlog::info(
                 "--chunked-prefill-size {}: shardlm always prefills long prompts in chunks, of "
                 "--max-num-batched-tokens tokens per step",
                 n);
           }
         },
         "SGLang's chunk size: the tokens per engine step (--max-num-batched-tokens); -1 keeps "
         "the default")
      ->check(CLI::Range(-1, 1 << 20))
      ->group(kGroup);
}

}  // namespace

// The callbacks run when the command line is parsed, after this returns: they keep copies of t's
// references.
void add_peer_flags(CLI::App& cmd, const PeerFlagTargets& t) {
  for (const PeerFlag& k : kKnobs) add_knob(cmd, k);
  for (const PeerFlag& r : kRefusals) add_refusal(cmd, r);
  add_effect_flags(cmd, t);
  cmd.add_option("--chat-template", t.chat_template,
                 "a Jinja chat template (a file, or the template itself) used instead of the "
                 "model's (vLLM, SGLang)");
  cmd.add_option_function<std::string>(
      "--generation-config,--sampling-defaults",
      [t](const std::string& v) {
        t.generation_config = v == "model" ? "auto" : (v == "openai" ? "vllm" : v);
      },
      "auto (default): requests that leave out temperature, top_p, top_k, min_p or "
      "repetition_penalty get the model's generation_config.json values; vllm: the API's own "
      "defaults; or a directory holding a generation_config.json (vLLM's flag; SGLang's "
      "--sampling-defaults model|openai)");
  cmd.add_option("--seed", t.seed,
                 "requests without a seed get one from this seed and their arrival order, so a "
                 "server restarted with the same --seed answers the same requests alike");
  cmd.add_flag("--enable-auto-tool-choice", t.enable_auto_tool_choice,
               "vLLM's switch for tool_choice auto: needs --tool-call-parser, which alone turns "
               "it on here");
}

void take_model_tag(const std::string& tag, std::string& model) {
  if (tag.empty()) return;
  if (!model.empty() && model != tag) {
    fail("the model is given twice, '{}' as the first argument and '{}' as --model: give one", tag,
         model);
  }
  model = tag;
}

void check_auto_tool_choice(bool enabled, const std::string& tool_call_parser) {
  if (enabled && tool_call_parser.empty()) {
    fail(
        "--enable-auto-tool-choice needs --tool-call-parser NAME (hermes, qwen, llama3_json, "
        "mistral, deepseek_v3, ...), as in vLLM: the parser reads the tool calls out of the "
        "output");
  }
}

}  // namespace shardlm::app
