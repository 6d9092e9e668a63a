// The fake OpenAI-compatible server of the bench serve tests.
#include "test_serve_bench_fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

namespace shardlm::testing {

namespace {

using nlohmann::json;

std::string sse(const json& j) {
  return "data: " + j.dump() + "\n\n";
}

json chunk(int i, bool chat) {
  const std::string text = "t" + std::to_string(i) + " ";
  json choice = {{"index", 0}, {"finish_reason", nullptr}};
  if (chat) {
    choice["delta"] = {{"content", text}};
  } else {
    choice["text"] = text;
  }
  return {{"id", "x"},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"choices", json::array({choice})}};
}

}  // namespace

FakeOpenAiServer::FakeOpenAiServer(int token_delay_ms) : token_delay_ms_(token_delay_ms) {
  server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
  add_routes();
  port_ = server_.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
}

FakeOpenAiServer::~FakeOpenAiServer() {
  stop();
}

void FakeOpenAiServer::stop() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

void FakeOpenAiServer::enter() {
  const int now = ++in_flight_;
  int seen = max_in_flight_;
  while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
  }
}

void FakeOpenAiServer::leave() {
  --in_flight_;
}

std::vector<int> FakeOpenAiServer::encode(const std::string& text) {
  std::lock_guard lock(vocab_mutex_);
  std::vector<int> ids = {kBos};
  std::istringstream in(text);
  for (std::string w; in >> w;) {
    auto [it, added] = ids_.emplace(w, static_cast<int>(words_.size()) + 10);
    if (added) words_.push_back(w);
    ids.push_back(it->second);
  }
  return ids;
}

std::string FakeOpenAiServer::decode(const std::vector<int>& ids) {
  std::lock_guard lock(vocab_mutex_);
  std::string text;
  for (int id : ids) {
    if (id < 10 || id - 10 >= static_cast<int>(words_.size())) continue;
    text += (text.empty() ? "" : " ") + words_[static_cast<size_t>(id - 10)];
  }
  return text;
}

void FakeOpenAiServer::add_routes() {
  server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"data", json::array({{{"id", "fake"}}})}}.dump(), "application/json");
  });
  server_.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const auto ids = encode(json::parse(req.body).at("prompt").get<std::string>());
    res.set_content(json{{"tokens", ids}, {"count", ids.size()}}.dump(), "application/json");
  });
  server_.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const auto text = decode(json::parse(req.body).at("tokens").get<std::vector<int>>());
    res.set_content(json{{"prompt", text}}.dump(), "application/json");
  });
  server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    on_completion(req, res, false);
  });
  server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    on_completion(req, res, true);
  });
}

void FakeOpenAiServer::on_completion(const httplib::Request& req, httplib::Response& res,
                                     bool chat) {
  ++completions_;
  const json body = json::parse(req.body);
  const std::string model = body.value("model", "fake");
  if (model == "fail") {
    res.status = 500;
    res.set_content(R"({"error": {"message": "boom", "type": "internal"}})", "application/json");
    return;
  }
  const int n = body.value("max_tokens", 16);
  int prompt_tokens = 0;
  if (chat) {
    prompt_tokens = static_cast<int>(encode(body["messages"][0]["content"]).size());
  } else if (body["prompt"].is_array()) {
    prompt_tokens = static_cast<int>(body["prompt"].size());
  } else {
    prompt_tokens = static_cast<int>(encode(body["prompt"].get<std::string>()).size());
  }
  enter();
  res.set_chunked_content_provider("text/event-stream", [this, n, chat, model, prompt_tokens](
                                                            size_t, httplib::DataSink& sink) {
    auto write = [&](const std::string& s) { sink.write(s.data(), s.size()); };
    if (model == "slow") std::this_thread::sleep_for(std::chrono::seconds(1));
    if (chat)
      write(sse({{"choices", json::array({{{"index", 0}, {"delta", {{"role", "assistant"}}}}})}}));
    for (int i = 0; i < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(token_delay_ms_));
      json c = chunk(i, chat);
      if (i == n - 1) c["choices"][0]["finish_reason"] = "length";
      write(sse(c));
      if (model == "cut" && i == 1) {
        leave();
        return false;  // the connection drops mid-response
      }
      if (model == "abort" && i == 1) {  // the server ends the stream early, as a broken group does
        json end = chunk(i, chat);
        end["choices"][0]["finish_reason"] = "abort";
        end["choices"][0][chat ? "delta" : "text"] = chat ? json::object() : json("");
        write(sse(end));
        write(sse({{"choices", json::array()},
                   {"usage",
                    {{"prompt_tokens", prompt_tokens},
                     {"completion_tokens", 2},
                     {"total_tokens", prompt_tokens + 2}}}}));
        write("data: [DONE]\n\n");
        leave();
        sink.done();
        return true;
      }
    }
    if (model != "no-usage") {
      write(sse({{"choices", json::array()},
                 {"usage",
                  {{"prompt_tokens", prompt_tokens},
                   {"completion_tokens", n},
                   {"total_tokens", prompt_tokens + n}}}}));
    }
    write("data: [DONE]\n\n");
    leave();
    sink.done();
    return true;
  });
}

int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);  // bound but never listened on: connecting is refused
  return ntohs(addr.sin_port);
}

}  // namespace shardlm::testing
