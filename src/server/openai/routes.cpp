// Route table.
#include "server/openai/routes.h"

#include "server/http_server.h"

namespace shardlm::server {

void register_openai_routes(HttpServer& http, const ServingContext& ctx) {
  auto bind = [&ctx](
                  void (*handler)(const ServingContext&, const HttpRequest&, httplib::Response&)) {
    return
        [&ctx, handler](const HttpRequest& req, httplib::Response& res) { handler(ctx, req, res); };
  };
  http.post("/v1/completions", bind(handle_completions), true);
  http.post("/v1/chat/completions", bind(handle_chat_completions), true);
  http.get("/v1/models", bind(handle_models), true);
  http.get("/v1/models/(.+)", bind(handle_model), true);
  http.post("/tokenize", bind(handle_tokenize), true);
  http.post("/detokenize", bind(handle_detokenize), true);
}

}  // namespace shardlm::server
