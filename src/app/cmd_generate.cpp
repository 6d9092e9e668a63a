// `shardlm generate`: streams the generated text to stdout and statistics to stderr.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/chat_prompt.h"
#include "app/commands.h"
#include "app/default_model.h"
#include "app/model_session.h"
#include "app/prompts_file.h"
#include "core/error.h"
#include "engine/llm.h"

namespace shardlm::app {

namespace {

struct GenerateOptions {
  SessionOptions session;
  std::string prompt;
  std::string prompt_file;
  std::string prompts_file;
  int max_num_seqs = 64;
  bool chat = false;
  SamplingParams sampling;
  int64_t seed = -1;
};

std::string read_prompt(const GenerateOptions& o) {
  if (o.prompt_file.empty()) return o.prompt;
  std::ifstream in(o.prompt_file, std::ios::binary);
  if (!in) fail("cannot read --prompt-file '{}'", o.prompt_file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Prefill: from admission to the first token (which it samples); decode: the tokens after it.
void print_stats(const GenerateOutput& o) {
  const RequestTimes& t = o.times;
  const auto prompt = static_cast<int>(o.prompt_token_ids.size());
  const auto generated = static_cast<int>(o.token_ids.size());
  const double prefill = t.first_token > 0 ? t.first_token - t.first_scheduled : 0;
  const double decode = generated > 1 ? t.last_token - t.first_token : 0;
  const double pf = prefill > 0 ? prompt / prefill : 0;
  const double dc = decode > 0 ? (generated - 1) / decode : 0;
  std::cerr << fmt::format(
      "\nprompt: {} tokens in {:.3f} s ({:.1f} tok/s); decode: {} tokens in {:.3f} s ({:.1f} "
      "tok/s)\n",
      prompt, prefill, pf, generated, decode, dc);
}

const char* finish_name(RequestFinishReason r) {
  switch (r) {
    case RequestFinishReason::kStop:
      return "stop";
    case RequestFinishReason::kLength:
      return "length";
    default:
      return "abort";
  }
}

// A batch through the offline LLM API (continuous batching): one JSON line per prompt on stdout.
void run_batch(const GenerateOptions& o) {
  auto prompts = read_prompts_file(o.prompts_file);
  LLM llm(engine_args(o.session, o.max_num_seqs));
  std::vector<GenerateOutput> outputs;
  if (o.chat) {  // the template writes BOS itself: encode without adding special tokens
    std::vector<std::vector<int32_t>> ids;
    for (const auto& text : build_chat_prompts(llm.model(), prompts)) {
      ids.push_back(llm.tokenizer().encode(text, false, true));
    }
    outputs = llm.generate(ids, o.sampling);
  } else {
    outputs = llm.generate(prompts, o.sampling);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const nlohmann::json line = {{"index", i},
                                 {"text", outputs[i].text},
                                 {"prompt_tokens", outputs[i].prompt_token_ids.size()},
                                 {"completion_tokens", outputs[i].token_ids.size()},
                                 {"finish_reason", finish_name(outputs[i].finish_reason)}};
    std::cout << line.dump() << "\n";
  }
}

void run_generate(GenerateOptions& o) {
  const int sources = !o.prompt.empty() + !o.prompt_file.empty() + !o.prompts_file.empty();
  if (sources != 1) {
    fail("give exactly one of --prompt TEXT, --prompt-file FILE or --prompts-file FILE");
  }
  if (o.seed >= 0) o.sampling.seed = static_cast<uint64_t>(o.seed);
  o.sampling.validate();
  if (!o.prompts_file.empty()) {
    run_batch(o);
    return;
  }
  EngineArgs args = engine_args(o.session, 1);
  args.show_progress = false;
  LLM llm(args);
  const std::string text = read_prompt(o);
  std::vector<int32_t> ids;
  if (o.chat) {
    ids = llm.tokenizer().encode(build_chat_prompt(llm.model(), text), false, true);
  } else {
    ids = llm.tokenizer().encode(text, true, true);
  }
  const GenerateOutput out = llm.generate_stream(ids, o.sampling, [](const TokenEvent& t) {
    std::cout << t.text << std::flush;
    return true;
  });
  std::cout << out.stream_tail << std::flush;
  print_stats(out);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "generate text from a prompt");
  add_session_flags(*cmd, o->session);
  cmd->add_option("-p,--prompt", o->prompt, "prompt text");
  cmd->add_option("-f,--prompt-file", o->prompt_file, "file holding the prompt");
  cmd->add_option("--prompts-file", o->prompts_file,
                  "batch: one prompt per line (or JSON Lines with \"prompt\"); prints JSON Lines");
  cmd->add_option("--max-num-seqs", o->max_num_seqs, "batch: sequences run together")
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--chat", o->chat, "wrap the prompt as one user message with the chat template");
  cmd->add_option("-n,--max-tokens", o->sampling.max_tokens, "tokens to generate")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", o->sampling.temperature, "sampling temperature (0 = greedy)");
  cmd->add_option("--top-p", o->sampling.top_p, "nucleus sampling mass");
  cmd->add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens (0 = off)");
  cmd->add_option("--min-p", o->sampling.min_p,
                  "drop tokens below min-p times the top probability");
  cmd->add_option("--repetition-penalty", o->sampling.repetition_penalty,
                  "penalise repeated tokens");
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "OpenAI presence penalty");
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "OpenAI frequency penalty");
  cmd->add_option("--seed", o->seed, "random seed (same seed, same output)");
  cmd->add_flag("--ignore-eos", o->sampling.ignore_eos, "keep generating after end-of-sequence");
  cmd->callback([o] { run_generate(*o); });
}

}  // namespace shardlm::app
