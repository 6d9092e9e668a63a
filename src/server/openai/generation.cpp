// Choice expansion, the non-streaming collector and the SSE stream writer.
#include "server/openai/generation.h"

#include "core/error.h"
#include "engine/output_text.h"
#include "server/openai/api_error.h"
#include "server/sse.h"

namespace shardlm::server {

namespace {

using std::chrono::milliseconds;

// The engine requests of one HTTP request, one per choice, read through one StreamSet: whichever
// choice has output wakes the handler. Aborts whatever is unfinished when destroyed.
class ChoiceSet {
 public:
  ChoiceSet(AsyncEngine& engine, std::vector<ChoiceInput> inputs) : engine_(engine) {
    std::vector<AsyncEngine::Submission> requests;
    for (ChoiceInput& in : inputs) {
      requests.push_back({std::move(in.prompt), in.params, std::move(in.resumed)});
    }
    try {
      for (auto& stream : engine.submit(std::move(requests), streams_.signal())) {
        streams_.add(std::move(stream));
      }
    } catch (const InvalidRequest& e) {  // the one validation, in AsyncEngine::submit
      throw ApiError(400, e.what(), e.param, e.code);
    } catch (const Error& e) {
      throw ApiError(400, e.what());
    }
  }
  ~ChoiceSet() { abort_unfinished(); }

  size_t size() const { return streams_.size(); }
  // The id of the first choice's engine request (the choices have consecutive ids).
  int64_t first_request_id() const { return streams_[0].id(); }
  bool all_done() const { return streams_.all_done(); }
  // The next output of any choice, waiting up to `timeout` when none is ready.
  std::optional<std::pair<size_t, RequestOutput>> next(milliseconds timeout) {
    return streams_.next(timeout);
  }
  void abort_unfinished() {
    for (size_t i = 0; i < streams_.size(); ++i) {
      if (!streams_[i].done()) engine_.abort(streams_[i].id());
    }
  }
  std::string first_error() const {
    for (size_t i = 0; i < streams_.size(); ++i) {
      if (std::string e = streams_[i].error(); !e.empty()) return e;
    }
    return {};
  }

 private:
  AsyncEngine& engine_;
  StreamSet streams_;
};

// Prompt tokens count once per prompt (not per choice), as OpenAI reports them.
int64_t prompt_usage(const std::vector<ChoiceInput>& choices, int n) {
  int64_t total = 0;
  for (size_t i = 0; i < choices.size(); i += static_cast<size_t>(n)) {
    total += static_cast<int64_t>(choices[i].prompt.size());
  }
  return total;
}

// Waits for every choice; gives up (aborting them) as soon as the client is gone, so that a
// client that timed out never leaves its generation holding KV blocks. Outputs wake the wait at
// once; the 100 ms timeout only paces the peek at the socket while nothing is ready.
// vLLM's return_token_ids: each choice of a body or chunk carries its token ids.
void add_token_ids(Json& body, size_t index, const std::vector<int32_t>& ids) {
  body["choices"][index]["token_ids"] = ids;
}

void respond_once(ChoiceSet& set, ResponseFormat& format, Usage usage, bool return_token_ids,
                  const std::function<bool()>& client_connected, httplib::Response& res) {
  std::vector<ChoiceResult> results(set.size());
  auto next_check = std::chrono::steady_clock::now();
  while (!set.all_done()) {
    auto event = set.next(milliseconds(100));
    if (std::chrono::steady_clock::now() >= next_check) {  // a peek at the socket, ten times a second
      if (!client_connected()) {
        set.abort_unfinished();
        res.status = kClientClosedRequest;
        return;
      }
      next_check = std::chrono::steady_clock::now() + milliseconds(100);
    }
    if (!event) continue;
    auto& [index, out] = *event;
    ChoiceResult& r = results[index];
    r.text += out.text;
    r.token_ids.insert(r.token_ids.end(), out.token_ids.begin(), out.token_ids.end());
    for (auto& lp : out.logprobs) r.logprobs.push_back(std::move(lp));
    for (auto& lp : out.prompt_logprobs) r.prompt_logprobs.push_back(std::move(lp));
    if (out.finish_reason) {
      r.reason = *out.finish_reason;
      usage.completion_tokens += out.n_output_tokens;
    }
  }
  if (const std::string error = set.first_error(); !error.empty()) throw ApiError(503, error);
  Json body = format.response(results, usage);
  if (return_token_ids) {
    for (size_t i = 0; i < results.size(); ++i) add_token_ids(body, i, results[i].token_ids);
  }
  res.set_content(to_wire(body), "application/json");
}

struct StreamState {
  std::unique_ptr<ChoiceSet> set;
  std::unique_ptr<ResponseFormat> format;
  std::vector<bool> started;
  Usage usage;
  bool include_usage = false;
  bool return_token_ids = false;
};

bool write_event(httplib::DataSink& sink, const std::string& event) {
  return sink.write(event.data(), event.size());
}

// Called by the HTTP library until it returns false or calls sink.done(). An output wakes the
// wait at once; the 50 ms timeout only paces the check for a gone client while nothing is ready.
bool stream_step(StreamState& st, httplib::DataSink& sink) {
  auto event = st.set->next(milliseconds(50));
  if (!event && !sink.is_writable()) return false;  // the client left while nothing was ready
  if (event) {
    auto& [index, out] = *event;
    const bool first = !st.started[index];
    st.started[index] = true;
    if (out.finish_reason) st.usage.completion_tokens += out.n_output_tokens;
    Json chunk = st.format->chunk(static_cast<int>(index), out, first);
    if (st.return_token_ids) add_token_ids(chunk, 0, out.token_ids);
    if (!write_event(sink, sse_data(to_wire(chunk)))) return false;
  }
  if (!st.set->all_done()) return true;
  if (st.include_usage && !write_event(sink, sse_data(to_wire(st.format->usage_chunk(st.usage))))) {
    return false;
  }
  if (!write_event(sink, sse_done())) return false;
  sink.done();
  return true;
}

// A resumed choice (ChoiceInput::resumed) continues a stream whose first part the client already
// has: the format takes that part's text as its first output, unsent, so that its state (the
// chat role sent, reasoning and tool-call parsing, logprobs offsets) is where the first worker's
// was. The text is what that worker sent: OutputText is a function of the tokens.
void prime_resumed(const ServingContext& ctx, const ChoiceInput& choice, ResponseFormat& format,
                   std::vector<bool>& started) {
  if (choice.resumed.empty()) return;
  OutputText text(ctx.tokenizer, choice.params);
  for (int32_t token : choice.resumed) text.push(token);
  RequestOutput sent;
  sent.text = text.take_ready(false);
  sent.token_ids = choice.resumed;
  format.chunk(0, sent, true);
  started[0] = true;
}

}  // namespace

std::vector<ChoiceInput> expand_choices(const ServingContext& ctx,
                                        const std::vector<std::vector<int32_t>>& prompts,
                                        const GenerationFields& fields) {
  std::vector<ChoiceInput> choices;
  std::shared_ptr<const CompiledGrammar> grammar;  // one compile, a matcher per choice
  if (fields.structured) grammar = compile_structured_output(ctx, *fields.structured);
  for (const auto& prompt : prompts) {
    const auto n_prompt = static_cast<int64_t>(prompt.size());
    // Validated at submission (validate_request): a prompt that leaves no room is refused there.
    const int64_t max_tokens = fields.max_tokens.value_or(ctx.max_model_len - n_prompt);
    for (int j = 0; j < fields.n; ++j) {
      ChoiceInput c{prompt, fields.sampling, {}};
      c.params.grammar = grammar;
      c.params.max_tokens = static_cast<int>(max_tokens);
      if (c.params.seed) c.params.seed = *c.params.seed + static_cast<uint64_t>(j);
      c.resumed = fields.resume_token_ids;  // one prompt and n = 1 when set (parse_*_request)
      choices.push_back(std::move(c));
    }
  }
  return choices;
}

void respond_with_generation(const ServingContext& ctx, std::vector<ChoiceInput> choices,
                             std::unique_ptr<ResponseFormat> format, const char* id_prefix,
                             const GenerationFields& fields, const HttpRequest& req,
                             httplib::Response& res) {
  if (ctx.draining) throw ApiError(503, "the server is shutting down; retry on another server");
  if (const std::string fatal = ctx.engine.fatal_error(); !fatal.empty()) {
    throw ApiError(503, "the engine cannot serve: " + fatal);
  }
  Usage usage{prompt_usage(choices, fields.n), 0};
  const size_t n_choices = choices.size();
  std::vector<bool> started(n_choices, false);
  const ChoiceInput first{{}, choices.front().params, choices.front().resumed};
  auto set = std::make_unique<ChoiceSet>(ctx.engine, std::move(choices));  // validates them
  format->set_id(make_response_id(id_prefix, set->first_request_id()));
  if (fields.stream) prime_resumed(ctx, first, *format, started);
  if (!fields.stream) {
    respond_once(*set, *format, usage, fields.return_token_ids, req.client_connected, res);
    return;
  }
  auto st = std::make_shared<StreamState>();
  st->set = std::move(set);
  st->format = std::move(format);
  st->started = std::move(started);
  st->usage = usage;
  st->include_usage = fields.include_usage;
  st->return_token_ids = fields.return_token_ids;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [st](size_t, httplib::DataSink& sink) { return stream_step(*st, sink); },
      [st](bool) { st->set->abort_unfinished(); });
}

}  // namespace shardlm::server
