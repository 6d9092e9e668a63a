// The OpenAI-compatible routes. Each handler reads the ServingContext, throws ApiError for bad
// input (the HttpServer turns it into an error body) and fills the response.
#pragma once

#include <httplib.h>

#include "server/http_request.h"
#include "server/serving_context.h"

namespace shardlm::server {

class HttpServer;

// /v1/completions, /v1/chat/completions, /v1/models, /v1/models/{id}, /tokenize, /detokenize.
void register_openai_routes(HttpServer& http, const ServingContext& ctx);

void handle_completions(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res);
void handle_chat_completions(const ServingContext& ctx, const HttpRequest& req,
                             httplib::Response& res);
void handle_models(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res);
// GET /v1/models/{id}: the served model, or 404 model_not_found.
void handle_model(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res);
void handle_tokenize(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res);
void handle_detokenize(const ServingContext& ctx, const HttpRequest& req, httplib::Response& res);

// 404 (model_not_found) unless `model` is empty or the served name.
void check_model_name(const ServingContext& ctx, const std::string& model);

}  // namespace shardlm::server
