// POST /v1/chat/completions: the messages through the model's chat template, then generation.
#include <ctime>

#include "server/openai/api_error.h"
#include "server/openai/generation.h"
#include "server/openai/routes.h"

namespace shardlm::server {

namespace {

std::string render_chat(const ServingContext& ctx, const ChatRequest& r) {
  Json context = r.template_kwargs;
  context["messages"] = r.messages;
  if (r.tools && r.tools->choice != ToolsRequest::Choice::kNone) context["tools"] = r.tools->tools;
  context["add_generation_prompt"] = r.add_generation_prompt;
  context["bos_token"] = ctx.template_info.bos_token;
  context["eos_token"] = ctx.template_info.eos_token;
  try {
    return ctx.chat_template.render(context);
  } catch (const std::exception& e) {  // e.g. raise_exception("Conversation roles must alternate")
    throw ApiError(400, fmt::format("the chat template rejected the messages: {}", e.what()),
                   "messages");
  }
}

// tool_choice required or a named function: the grammar that enforces it; auto: a parser.
void constrain_tool_calls(const ServingContext& ctx, ChatRequest& r) {
  if (!r.tools) return;
  if (r.tools->choice == ToolsRequest::Choice::kAuto && !ctx.tool_parser) {
    bad_request("tool_choice",
                "tool_choice 'auto' needs the server started with --tool-call-parser (hermes, "
                "llama3_json, mistral, ...); send tool_choice 'required' or a named function, or "
                "'none'");
  }
  std::optional<StructuredOutput> grammar = tool_grammar(*r.tools);
  if (!grammar) return;
  if (r.fields.structured) {
    bad_request(r.fields.structured->field, "'{}' and tool_choice both constrain the output; "
                "send only one", r.fields.structured->field);
  }
  r.fields.structured = std::move(grammar);
}

}  // namespace

void handle_chat_completions(const ServingContext& ctx, const HttpRequest& req,
                             httplib::Response& res) {
  ChatRequest r = parse_chat_request(ctx.body_with_defaults(req.body));
  check_model_name(ctx, r.fields.model);
  constrain_tool_calls(ctx, r);
  // The template writes BOS itself: encode without adding special tokens.
  const std::vector<int32_t> prompt = ctx.tokenizer.encode(render_chat(ctx, r), false, true);
  auto choices = expand_choices(ctx, {prompt}, r.fields);
  ResponseMeta meta{"", static_cast<int64_t>(std::time(nullptr)), ctx.served_model_name};
  ChatOutputOptions output{r.tools ? std::make_shared<const ToolsRequest>(*r.tools) : nullptr,
                           ctx.tool_parser, ctx.reasoning_parser};
  auto format = chat_format(std::move(meta), ctx.tokenizer, r.fields.sampling.logprobs.has_value(),
                            output);
  respond_with_generation(ctx, std::move(choices), std::move(format), "chatcmpl-", r.fields, req,
                          res);
}

}  // namespace shardlm::server
