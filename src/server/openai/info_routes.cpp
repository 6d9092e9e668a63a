// GET /v1/models, /v1/models/{id}; POST /tokenize, /detokenize (vLLM's shapes).
#include <algorithm>
#include <ctime>

#include "server/openai/api_error.h"
#include "server/openai/responses.h"
#include "server/openai/routes.h"

namespace shardlm::server {

namespace {

bool serves(const ServingContext& ctx, const std::string& name) {
  return name == ctx.served_model_name ||
         std::find(ctx.model_aliases.begin(), ctx.model_aliases.end(), name) !=
             ctx.model_aliases.end();
}

}  // namespace

void check_model_name(const ServingContext& ctx, const std::string& model) {
  if (!model.empty() && !serves(ctx, model)) {
    throw ApiError(404,
                   fmt::format("The model '{}' does not exist; this server serves '{}' (see "
                               "GET /v1/models)",
                               model.substr(0, 200), ctx.served_model_name),
                   "model", "model_not_found");
  }
}

namespace {

Json model_card(const ServingContext& ctx, const std::string& id) {
  static const int64_t created = static_cast<int64_t>(std::time(nullptr));
  return {{"id", id},
          {"object", "model"},
          {"created", created},
          {"owned_by", "shardlm"},
          {"root", ctx.served_model_name},
          {"parent", nullptr},
          {"max_model_len", ctx.max_model_len}};
}

}  // namespace

void handle_models(const ServingContext& ctx, const HttpRequest&, httplib::Response& res) {
  Json cards = Json::array({model_card(ctx, ctx.served_model_name)});
  for (const std::string& alias : ctx.model_aliases) cards.push_back(model_card(ctx, alias));
  res.set_content(to_wire({{"object", "list"}, {"data", cards}}), "application/json");
}

void handle_model(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res) {
  const std::string id = req.matches[1].str();
  if (!serves(ctx, id)) {
    throw ApiError(404,
                   fmt::format("The model '{}' does not exist; this server serves '{}'",
                               id.substr(0, 200), ctx.served_model_name),
                   "model", "model_not_found");
  }
  res.set_content(to_wire(model_card(ctx, id)), "application/json");
}

void handle_tokenize(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res) {
  const Json body = parse_body(req.body);
  check_model_name(ctx, string_field(body, "model").value_or(""));
  const auto prompt = string_field(body, "prompt");
  if (!prompt) bad_request("prompt", "'prompt' (a string) is required");
  const bool add_special = bool_field(body, "add_special_tokens").value_or(true);
  const auto ids = ctx.tokenizer.encode(*prompt, add_special, true);
  res.set_content(
      to_wire({{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx.max_model_len}}),
      "application/json");
}

void handle_detokenize(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res) {
  const Json body = parse_body(req.body);
  check_model_name(ctx, string_field(body, "model").value_or(""));
  const auto ids = token_ids_field(body, "tokens");
  if (!ids) bad_request("tokens", "'tokens' (a list of token ids) is required");
  for (int32_t id : *ids) {
    if (id >= ctx.tokenizer.vocab_size()) {
      bad_request("tokens", "token id {} is outside the vocabulary [0, {})", id,
                  ctx.tokenizer.vocab_size());
    }
  }
  res.set_content(to_wire({{"prompt", ctx.tokenizer.decode(*ids, false)}}), "application/json");
}

}  // namespace shardlm::server
