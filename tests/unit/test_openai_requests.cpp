// OpenAI request parsing: every accepted shape, and a 400 naming the field for each bad one.
// Also the size flags of `serve`, the served model name and the HTTP server's elastic worker pool.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "app/size_flag.h"
#include "comm/elastic_task_queue.h"
#include "core/error.h"
#include "server/api_server.h"
#include "server/openai/api_error.h"
#include "server/openai/requests.h"

namespace shardlm::server {
namespace {

std::string param_of(const std::string& body, bool chat = false) {
  try {
    const Json j = parse_body(body);
    chat ? (void)parse_chat_request(j) : (void)parse_completion_request(j);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    return e.param.empty() ? "<body>" : e.param;
  }
  return "";
}

TEST(OpenAiRequests, CompletionFields) {
  const auto r = parse_completion_request(parse_body(R"({
    "model": "m", "prompt": ["a", [1, 2]], "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
    "top_k": 5, "min_p": 0.1, "n": 2, "stop": "x", "stop_token_ids": [3], "ignore_eos": true,
    "seed": 42, "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.2,
    "logprobs": 2, "echo": true, "user": "u", "stream": true,
    "stream_options": {"include_usage": true}})"));
  EXPECT_EQ(r.fields.model, "m");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(std::get<std::string>(r.prompts[0]), "a");
  EXPECT_EQ(std::get<std::vector<int32_t>>(r.prompts[1]), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(*r.fields.max_tokens, 7);
  const SamplingParams& s = r.fields.sampling;
  EXPECT_FLOAT_EQ(s.temperature, 0.5f);
  EXPECT_EQ(s.top_k, 5);
  EXPECT_EQ(s.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(s.stop_token_ids, std::vector<int32_t>{3});
  EXPECT_TRUE(s.ignore_eos);
  EXPECT_EQ(*s.seed, 42u);
  EXPECT_EQ(*s.logprobs, 2);
  EXPECT_EQ(*s.prompt_logprobs, 2);  // echo with logprobs scores the prompt
  EXPECT_TRUE(r.echo && r.fields.stream && r.fields.include_usage);
  EXPECT_EQ(r.fields.n, 2);
}

TEST(OpenAiRequests, UnknownAndUnimplementedFieldsAreNamed) {
  EXPECT_EQ(param_of(R"({"prompt": "a", "unknown_field": 1})"), "unknown_field");
  for (const char* field : {"min_tokens", "use_beam_search", "allowed_token_ids", "bad_words",
                            "truncate_prompt_tokens", "logits_processors"}) {
    EXPECT_EQ(param_of(fmt::format(R"({{"prompt": "a", "{}": 1}})", field)), field);
  }
  EXPECT_EQ(param_of(R"({"messages": [{"role": "user"}], "echo": true})", true), "echo");
  EXPECT_EQ(param_of(R"({"prompt": "a", "top_logprobs": 2})"), "top_logprobs");
  // OpenAI's bookkeeping fields change nothing in the output and pass.
  EXPECT_EQ(param_of(R"({"prompt": "a", "store": false, "metadata": {"k": "v"}})"), "");
}

TEST(OpenAiRequests, LogitBias) {
  const auto r = parse_completion_request(
      parse_body(R"({"prompt": "a", "logit_bias": {"7": -100, "9": 2.5}})"));
  ASSERT_EQ(r.fields.sampling.logit_bias.size(), 2u);
  EXPECT_EQ(r.fields.sampling.logit_bias[1], (std::pair<int32_t, float>{9, 2.5f}));
  EXPECT_EQ(param_of(R"({"prompt": "a", "logit_bias": {"7": 101}})"), "logit_bias");
  EXPECT_EQ(param_of(R"({"prompt": "a", "logit_bias": {"x7": 1}})"), "logit_bias");
}

TEST(OpenAiRequests, PromptLogprobsFields) {
  const auto r = parse_completion_request(parse_body(R"({"prompt": "a", "prompt_logprobs": 3})"));
  EXPECT_EQ(*r.prompt_logprobs, 3);
  EXPECT_EQ(*r.fields.sampling.prompt_logprobs, 3);
  EXPECT_FALSE(r.fields.sampling.logprobs);
  const auto plain = parse_completion_request(parse_body(R"({"prompt": "a", "logprobs": 1})"));
  EXPECT_FALSE(plain.fields.sampling.prompt_logprobs);  // no echo: only the generated tokens
  EXPECT_EQ(param_of(R"({"prompt": "a", "prompt_logprobs": 99})"), "prompt_logprobs");
}

TEST(OpenAiRequests, PromptShapes) {
  EXPECT_EQ(parse_completion_request(parse_body(R"({"prompt": [[1], [2, 3]]})")).prompts.size(),
            2u);
  EXPECT_EQ(parse_completion_request(parse_body(R"({"prompt": [5, 6]})")).prompts.size(), 1u);
}

TEST(OpenAiRequests, ChatFields) {
  const auto r = parse_chat_request(parse_body(R"({
    "messages": [{"role": "system", "content": "s"},
                 {"role": "user", "content": [{"type": "text", "text": "a"},
                                              {"type": "text", "text": "b"}]}],
    "max_completion_tokens": 3, "max_tokens": 99, "logprobs": true, "top_logprobs": 4,
    "chat_template_kwargs": {"enable_thinking": false}})"));
  EXPECT_EQ(r.messages[1]["content"], "a\nb");
  EXPECT_EQ(*r.fields.max_tokens, 3);
  EXPECT_EQ(*r.fields.sampling.logprobs, 4);
  EXPECT_EQ(r.template_kwargs["enable_thinking"], false);
}

TEST(OpenAiRequests, BadFieldsNameTheField) {
  EXPECT_EQ(param_of("{"), "<body>");
  EXPECT_EQ(param_of("[]"), "<body>");
  EXPECT_EQ(param_of(R"({})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt": []})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt": [1, "a"]})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt": [-1]})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt": "a", "max_tokens": 0})"), "max_tokens");
  EXPECT_EQ(param_of(R"({"prompt": "a", "max_tokens": 1.5})"), "max_tokens");
  EXPECT_EQ(param_of(R"({"prompt": "a", "temperature": "hot"})"), "temperature");
  EXPECT_EQ(param_of(R"({"prompt": "a", "top_p": 0})"), "top_p");
  EXPECT_EQ(param_of(R"({"prompt": "a", "n": 17})"), "n");
  EXPECT_EQ(param_of(R"({"prompt": "a", "stop": [""]})"), "stop");
  EXPECT_EQ(param_of(R"({"prompt": "a", "seed": "x"})"), "seed");
  EXPECT_EQ(param_of(R"({"prompt": "a", "stream_options": 3})"), "stream_options");
  EXPECT_EQ(param_of(R"({"messages": "hi"})", true), "messages");
  EXPECT_EQ(param_of(R"({"messages": [{"role": "user", "content": 5}]})", true), "messages");
  EXPECT_EQ(param_of(R"({"messages": [{"role": "user"}], "top_logprobs": 1})", true),
            "top_logprobs");
  EXPECT_EQ(param_of(R"({"prompt": "a", "max_tokens": 1.0})"), "");  // integral float is fine
}

TEST(OpenAiRequests, ErrorBodyShape) {
  const Json body = ApiError(404, "no such model", "model", "model_not_found").body();
  EXPECT_EQ(body["error"]["type"], "not_found_error");
  EXPECT_EQ(body["error"]["param"], "model");
  EXPECT_EQ(body["error"]["code"], "model_not_found");
  EXPECT_TRUE(ApiError(400, "x").body()["error"]["param"].is_null());
}

TEST(SizeFlag, ParsesUnitsAndPercentages) {
  EXPECT_EQ(app::parse_size("1024", "--x"), 1024u);
  EXPECT_EQ(app::parse_size("512MiB", "--x"), size_t{512} << 20);
  EXPECT_EQ(app::parse_size("2GiB", "--x"), size_t{2} << 30);
  EXPECT_EQ(app::parse_size("1.5k", "--x"), 1536u);
  EXPECT_EQ(app::parse_size("3MB", "--x"), 3000000u);
  const size_t half = app::parse_size("50%", "--x");
  EXPECT_GT(half, 0u);
  EXPECT_LE(half, app::available_memory_bytes());
  for (const char* bad : {"", "abc", "12zz", "-5", "0", "150%", "%"}) {
    EXPECT_THROW(app::parse_size(bad, "--x"), Error) << bad;
  }
}

// Waits up to two seconds for `done`.
template <typename Pred>
void wait_for(Pred done) {
  for (int i = 0; i < 2000 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Enqueues n jobs that block until `release`; returns once all have started (or 2 s passed).
void enqueue_blocking(comm::ElasticTaskQueue& q, int n, std::atomic<int>& started,
                      std::atomic<bool>& release) {
  for (int i = 0; i < n; ++i) {
    q.enqueue([&] {
      ++started;
      while (!release) std::this_thread::yield();
    });
  }
  wait_for([&] { return started >= n; });
}

TEST(ElasticTaskQueue, GrowsToRunBlockingJobsConcurrently) {
  comm::ElasticTaskQueue q(64);
  std::atomic<int> started{0};
  std::atomic<bool> release{false};
  enqueue_blocking(q, 40, started, release);
  EXPECT_EQ(started, 40);  // all 40 blocking jobs run at once: a fixed pool of 8 would stall
  EXPECT_GE(q.threads(), 40u);
  EXPECT_LE(q.threads(), 64u);
  release = true;
  q.shutdown();
}

TEST(ElasticTaskQueue, IdleThreadsExitSoThePoolShrinks) {
  comm::ElasticTaskQueue q(64, std::chrono::milliseconds(50));
  std::atomic<int> started{0};
  std::atomic<bool> release{false};
  enqueue_blocking(q, 20, started, release);
  EXPECT_GE(q.threads(), 20u);
  release = true;
  wait_for([&] { return q.threads() == 0; });
  EXPECT_EQ(q.threads(), 0u);  // a burst's threads do not stay forever
  std::atomic<int> ran{0};
  q.enqueue([&] { ++ran; });  // and the pool still grows again afterwards
  q.shutdown();
  EXPECT_EQ(ran, 1);
}

TEST(OpenAiRequests, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string& body :
       {R"({"prompt": "a", "max_tokens": )" + deep + "}", "[" + deep + "]"}) {
    try {
      parse_body(body);
      ADD_FAILURE() << "accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_NE(std::string(e.what()).find("nests"), std::string::npos);
    }
  }
  // Brackets inside strings do not count, and ordinary bodies pass.
  EXPECT_NO_THROW(parse_body(R"({"prompt": ")" + std::string(1000, '[') + R"("})"));
  EXPECT_NO_THROW(parse_body(R"({"a": [[[{"b": [1]}]]]})"));
}

TEST(OpenAiRequests, NulByteAfterTheJsonIsRefused) {
  EXPECT_THROW(parse_body(std::string("{}\0junk", 7)), ApiError);
  EXPECT_THROW(parse_body(std::string("{\"a\": 1}\0", 9)), ApiError);
}

TEST(OpenAiRequests, ErrorMessagesNeverEchoLongValues) {
  const std::string long_string =
      R"({"prompt": "a", "max_tokens": ")" + std::string(100000, 'x') + R"("})";
  try {
    parse_completion_request(parse_body(long_string));
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "max_tokens");
    EXPECT_LT(std::string(e.what()).size(), 200u);
  }
  EXPECT_EQ(describe_value(Json::array({1, 2, 3})), "a list of 3 items");
  EXPECT_EQ(describe_value(Json::parse(R"({"a": 1})")), "an object with 1 keys");
}

TEST(OpenAiRequests, UnsupportedFieldsAreNamed) {
  for (const char* field : {"response_format", "tools", "logit_bias", "suffix", "best_of"}) {
    Json body = Json::parse(R"({"prompt": "a"})");
    body[field] = std::string(field) == "best_of" ? Json(2) : Json(R"({"x": 1})"_json);
    if (std::string(field) == "suffix") body[field] = "tail";
    if (std::string(field) == "tools") body[field] = Json::array({{{"type", "function"}}});
    EXPECT_EQ(param_of(body.dump()), field);
  }
  // Values that ask for nothing are accepted.
  EXPECT_EQ(param_of(R"({"prompt": "a", "response_format": {"type": "text"}, "tools": [],
                         "best_of": 1, "logit_bias": {}, "suffix": null})"),
            "");
  EXPECT_EQ(param_of(R"({"prompt": "a", "suffix": "", "tool_choice": "none"})"), "");
}

TEST(OpenAiRequests, CompletionsDefaultToSixteenTokens) {
  EXPECT_EQ(parse_completion_request(parse_body(R"({"prompt": "a"})")).fields.max_tokens, 16);
  EXPECT_FALSE(parse_chat_request(parse_body(R"({"messages": [{"role": "user", "content": "a"}]})"))
                   .fields.max_tokens.has_value());
}

TEST(ServedModelName, KeepsDotsOfPresetsAndDropsOnlyGgufExtensions) {
  EXPECT_EQ(default_served_name("llama-3.1-8b"), "llama-3.1-8b");
  EXPECT_EQ(default_served_name("qwen2.5-7b"), "qwen2.5-7b");
  const auto dir = std::filesystem::temp_directory_path() / "shardlm-served-name" / "Qwen2.5-0.5B";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "m.Q4_1.gguf") << "x";
  std::ofstream(dir / "config.json") << "{}";
  EXPECT_EQ(default_served_name(dir.string()), "Qwen2.5-0.5B");
  EXPECT_EQ(default_served_name(dir.string() + "/"), "Qwen2.5-0.5B");
  EXPECT_EQ(default_served_name((dir / "m.Q4_1.gguf").string()), "m.Q4_1");
  EXPECT_EQ(default_served_name((dir / "config.json").string()), "Qwen2.5-0.5B");
  std::filesystem::remove_all(dir.parent_path());
}

}  // namespace
}  // namespace shardlm::server
