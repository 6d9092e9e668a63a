// The server's tokenizer over HTTP (vLLM's /tokenize and /detokenize).
#include <algorithm>
#include <set>

#include "core/error.h"
#include "serve_bench/prompt_tokenizer.h"

namespace shardlm::serve_bench {

namespace {

// Written for this benchmark: ordinary English whose tokens make plausible random prompts.
constexpr const char* kPassage =
    "The river turned slowly past the old mill, carrying leaves, light and the sound of distant "
    "bells. Every morning the baker opened her windows, counted twelve loaves, and wrote the "
    "weather on a small board: cloudy, bright, windy, cold or warm. Children ran along the bridge "
    "toward the school while their teachers discussed numbers, maps, music, history and science. "
    "In the evening, travellers arrived from the mountains with stories about storms, markets, "
    "forgotten castles and a library where every book described another city. A clever engineer "
    "built a machine that measured rain, predicted harvests and played simple songs when people "
    "asked nicely. Nobody knew whether the garden behind the station would bloom again, yet each "
    "spring thousands of yellow flowers appeared, and the town celebrated with bread, honey, "
    "apples and quiet conversation until midnight. Questions about time, memory, language and "
    "kindness filled the letters that friends exchanged across the sea in 1987, 2004 and 2031.";

std::vector<int32_t> ids_of(const nlohmann::json& j, const std::string& url) {
  const auto it = j.find("tokens");
  if (it == j.end() || !it->is_array()) fail("{} answered without a \"tokens\" array", url);
  return it->get<std::vector<int32_t>>();
}

}  // namespace

RemoteTokenizer::RemoteTokenizer(Endpoint endpoint, std::string model)
    : endpoint_(std::move(endpoint)), model_(std::move(model)) {
  added_ = tokenize("");  // whatever a server adds even when asked not to (BOS)
}

std::vector<int32_t> RemoteTokenizer::tokenize(const std::string& text) const {
  nlohmann::json body = {{"prompt", text}, {"add_special_tokens", false}};
  if (!model_.empty()) body["model"] = model_;
  return ids_of(post_json(endpoint_, "/tokenize", body), endpoint_.url("/tokenize"));
}

std::vector<int32_t> RemoteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids = tokenize(text);
  if (!added_.empty() && ids.size() >= added_.size() &&
      std::equal(added_.begin(), added_.end(), ids.begin())) {
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(added_.size()));
  }
  return ids;
}

std::string RemoteTokenizer::decode(const std::vector<int32_t>& ids) const {
  nlohmann::json body = {{"tokens", ids}};
  if (!model_.empty()) body["model"] = model_;
  const nlohmann::json j = post_json(endpoint_, "/detokenize", body);
  const auto it = j.find("prompt");
  if (it == j.end() || !it->is_string()) {
    fail("{} answered without a \"prompt\" string", endpoint_.url("/detokenize"));
  }
  return it->get<std::string>();
}

std::vector<int32_t> RemoteTokenizer::vocabulary() const {
  std::set<int32_t> ids;
  for (int32_t id : encode(kPassage)) ids.insert(id);
  for (int32_t id : added_) ids.erase(id);
  if (ids.empty())
    fail("{} returned no tokens for a plain English text", endpoint_.url("/tokenize"));
  return {ids.begin(), ids.end()};
}

}  // namespace shardlm::serve_bench
