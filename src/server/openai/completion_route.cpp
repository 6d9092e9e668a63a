// POST /v1/completions.
#include <ctime>

#include "server/openai/generation.h"
#include "server/openai/routes.h"

namespace shardlm::server {

namespace {

std::vector<int32_t> encode_prompt(const ServingContext& ctx, const PromptInput& p,
                                   bool add_special) {
  if (const auto* ids = std::get_if<std::vector<int32_t>>(&p)) return *ids;
  return ctx.tokenizer.encode(std::get<std::string>(p), add_special, true);
}

std::string prompt_text(const ServingContext& ctx, const PromptInput& p) {
  if (const auto* text = std::get_if<std::string>(&p)) return *text;
  return ctx.tokenizer.decode(std::get<std::vector<int32_t>>(p), false);
}

}  // namespace

void handle_completions(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res) {
  const CompletionRequest r = parse_completion_request(ctx.body_with_defaults(req.body));
  check_model_name(ctx, r.fields.model);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<CompletionPrompt> echo;
  for (const PromptInput& p : r.prompts) {
    prompts.push_back(encode_prompt(ctx, p, r.add_special_tokens));
    for (int j = 0; j < r.fields.n; ++j) {
      echo.push_back({r.echo ? prompt_text(ctx, p) : "", prompts.back()});
    }
  }
  auto choices = expand_choices(ctx, prompts, r.fields);
  ResponseMeta meta{"", static_cast<int64_t>(std::time(nullptr)), ctx.served_model_name};
  CompletionOptions options;
  options.logprobs = r.fields.sampling.logprobs.has_value();
  options.echo_logprobs = r.echo && options.logprobs;
  options.prompt_logprobs = r.prompt_logprobs.has_value();
  auto format = completion_format(std::move(meta), ctx.tokenizer, std::move(echo), options);
  respond_with_generation(ctx, std::move(choices), std::move(format), "cmpl-", r.fields, req, res);
}

}  // namespace shardlm::server
