// An in-process stand-in for an OpenAI-compatible server, for the bench serve client tests. It
// streams one chunk per token with small sleeps and behaves according to the "model" a request
// names: "fake" (normal), "no-usage" (no usage chunk), "fail" (HTTP 500), "cut" (closes the
// connection after two chunks), "slow" (waits a second before the first chunk). /tokenize splits
// on spaces (one id per word, after a BOS id it adds whatever it is asked), /detokenize joins.
#pragma once

#include <httplib.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace shardlm::testing {

class FakeOpenAiServer {
 public:
  static constexpr int kBos = 1;

  explicit FakeOpenAiServer(int token_delay_ms = 2);
  ~FakeOpenAiServer();

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void stop();

  int max_in_flight() const { return max_in_flight_; }
  int completions() const { return completions_; }

  std::vector<int> encode(const std::string& text);
  std::string decode(const std::vector<int>& ids);

 private:
  void add_routes();
  void on_completion(const httplib::Request& req, httplib::Response& res, bool chat);
  void enter();
  void leave();

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  int token_delay_ms_;
  std::atomic<int> in_flight_{0}, max_in_flight_{0}, completions_{0};
  std::mutex vocab_mutex_;
  std::unordered_map<std::string, int> ids_;
  std::vector<std::string> words_;
};

// A port on 127.0.0.1 that nothing listens on (bound, then released).
int closed_port();

}  // namespace shardlm::testing
