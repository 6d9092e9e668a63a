// Mid-stream migration (Dynamo's request migration; `frontend --migration-limit N`). A stream the
// frontend may migrate is sent to its worker with return_token_ids, so that every chunk names the
// tokens whose text it carries. When the worker dies before the stream's end, or ends it with
// finish_reason "abort" (a worker alive whose TP/PP group broke, or whose drain ran out), the
// frontend sends
// the client's request again to another worker with resume_token_ids = the tokens the client has
// received: that worker renders and tokenises the prompt as the first did, prefills prompt + those
// tokens, counts them as its output (max_tokens, penalties, the sampler's draw numbers, the
// grammar and the stop strings carry on; engine Request::resume) and streams only what follows.
// The client's stream goes on under its first id and `created`, without the chunks' token ids
// unless it asked for them: greedy output equals an uninterrupted run.
//
// Only whole SSE events reach the client, so the tokens counted are exactly those whose text it
// has; an event cut mid-way by the dying worker is dropped and generated again by the next.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/upstream_call.h"

namespace shardlm::fleet {

// True for a request whose stream can migrate: stream true, one choice (n absent or 1), and for
// completions one prompt.
bool migratable_stream(const std::string& path, const nlohmann::json& body);
// The body a migratable stream's worker gets: the client's, with return_token_ids.
nlohmann::json with_token_ids(const nlohmann::json& body);
// The body that resumes it on another worker after `generated` tokens.
nlohmann::json resume_body(const nlohmann::json& body, const std::vector<int32_t>& generated);

// The SSE events of a migratable stream on their way to the client: whole events only, token ids
// gathered (and removed unless the client asked for them), id and created kept from the first
// worker's stream after a migration.
class MigrationTracker {
 public:
  explicit MigrationTracker(bool client_wants_token_ids) : keep_ids_(client_wants_token_ids) {}
  // The bytes to send to the client for `data` from the worker (possibly none yet).
  std::string feed(std::string_view data);
  // The stream goes on from another worker: drop the cut event's bytes, rewrite ids from now on.
  void restart();

  const std::vector<int32_t>& token_ids() const { return tokens_; }
  bool finished() const { return finished_; }  // a finish_reason arrived: nothing is left to make
  bool done() const { return done_; }          // [DONE] arrived
  // The worker ended the stream with finish_reason "abort" (its group broke, its drain ran out):
  // that event goes on without its finish_reason when it carries tokens, and nothing after it
  // (usage, [DONE]) reaches the client, so the stream ends as if cut and may migrate.
  bool aborted() const { return aborted_; }

 private:
  std::string rewrite(std::string_view event);

  bool keep_ids_;
  std::string partial_;  // bytes of an event not complete yet
  std::vector<int32_t> tokens_;
  bool finished_ = false;
  bool done_ = false;
  bool aborted_ = false;
  bool resumed_ = false;
  nlohmann::json id_, created_;  // the first stream's
};

// A stream started on a worker, past its first output.
struct StreamStart {
  std::shared_ptr<UpstreamCall> call;
  std::shared_ptr<void> hold;  // the caller's in-flight token for that worker
  std::string first;           // the first body bytes
  std::string worker;          // the worker's id
};

// Starts `body` on a worker other than `exclude`; nullopt with `why` when none takes it.
// `connected` says whether the client is still there.
using StreamRestart = std::function<std::optional<StreamStart>(
    const nlohmann::json& body, const std::string& exclude, const std::function<bool()>& connected,
    std::string& why)>;

struct MigrationHooks {
  StreamRestart restart;
  // The stream from `worker` was cut (its error); then, when it moved, where to.
  std::function<void(const std::string& worker, const std::string& error)> on_cut;
  std::function<void(const std::string& from, const std::string& to, size_t tokens)> on_migrated;
};

// Commits the stream to `res` (status 200, SSE): relays it and migrates it up to `limit` times.
void deliver_migrating_stream(StreamStart start, nlohmann::json body, int limit,
                              MigrationHooks hooks, httplib::Response& res);

}  // namespace shardlm::fleet
