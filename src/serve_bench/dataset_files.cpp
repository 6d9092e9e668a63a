// Prompts from files: ShareGPT conversations (first human turn as the prompt, the answer's length
// as max_tokens) and JSON Lines ({"prompt": ..., "output_len": N} or a plain line of text).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "serve_bench/dataset.h"

namespace shardlm::serve_bench {

namespace {

constexpr int kDefaultOutputLen = 128;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read --dataset-path '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Repeats the samples in order until there are n (a file shorter than --num-prompts).
std::vector<SampleRequest> cycle_to(std::vector<SampleRequest> samples, int n,
                                    const std::string& path) {
  if (samples.empty()) fail("'{}' holds no usable prompts", path);
  if (static_cast<int>(samples.size()) < n) {
    spdlog::warn("'{}' has {} usable prompts for --num-prompts {}: reusing them in order", path,
                 samples.size(), n);
  }
  const size_t have = samples.size();
  for (size_t i = have; i < static_cast<size_t>(n); ++i) samples.push_back(samples[i % have]);
  samples.resize(static_cast<size_t>(n));
  return samples;
}

// The two first turns of a ShareGPT entry, or false.
bool first_exchange(const nlohmann::json& entry, std::string& prompt, std::string& answer) {
  if (!entry.is_object()) return false;
  auto it = entry.find("conversations");
  if (it == entry.end()) it = entry.find("conversation");
  if (it == entry.end() || !it->is_array() || it->size() < 2) return false;
  const auto& turns = *it;
  for (int k = 0; k < 2; ++k) {
    if (!turns[k].is_object() || !turns[k].contains("value") || !turns[k]["value"].is_string()) {
      return false;
    }
  }
  prompt = turns[0]["value"].get<std::string>();
  answer = turns[1]["value"].get<std::string>();
  return true;
}

// vLLM's filter for ShareGPT: drop tiny and very long exchanges.
bool usable_lengths(int prompt_len, int output_len, bool fixed_output) {
  if (prompt_len < 4 || (!fixed_output && output_len < 4)) return false;
  return prompt_len <= 1024 && prompt_len + output_len <= 2048;
}

SampleRequest jsonl_sample(const std::string& line, int number, const DatasetOptions& o) {
  SampleRequest s;
  s.output_len = o.output_len > 0 ? o.output_len : kDefaultOutputLen;
  if (line.front() != '{') {
    s.prompt = line;
    return s;
  }
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string()) {
    fail(
        "'{}' line {}: a JSON line needs a \"prompt\" string, e.g. {{\"prompt\": \"Hello\", "
        "\"output_len\": 64}}",
        o.path, number);
  }
  s.prompt = j["prompt"].get<std::string>();
  for (const char* key : {"output_len", "max_tokens"}) {
    if (j.contains(key) && j[key].is_number_integer() && j[key].get<int>() > 0) {
      s.output_len = j[key].get<int>();
    }
  }
  return s;
}

}  // namespace

std::vector<SampleRequest> sharegpt_dataset(const DatasetOptions& o, const PromptTokenizer& tok) {
  const auto data = nlohmann::json::parse(read_file(o.path), nullptr, false);
  if (data.is_discarded() || !data.is_array()) {
    fail(
        "'{}' is not a ShareGPT file: expected a JSON array of {{\"conversations\": [{{\"from\": "
        "\"human\", \"value\": ...}}, ...]}}",
        o.path);
  }
  std::vector<size_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(o.seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<SampleRequest> samples;
  std::string prompt, answer;
  for (size_t k = 0; k < order.size() && static_cast<int>(samples.size()) < o.num_prompts; ++k) {
    if (!first_exchange(data[order[k]], prompt, answer)) continue;
    SampleRequest s;
    s.prompt = prompt;
    s.prompt_len = static_cast<int>(tok.encode(prompt).size());
    s.output_len = o.output_len > 0 ? o.output_len : static_cast<int>(tok.encode(answer).size());
    if (usable_lengths(s.prompt_len, s.output_len, o.output_len > 0)) samples.push_back(s);
  }
  return cycle_to(std::move(samples), o.num_prompts, o.path);
}

std::vector<SampleRequest> jsonl_dataset(const DatasetOptions& o, const PromptTokenizer& tok) {
  std::istringstream in(read_file(o.path));
  std::vector<SampleRequest> samples;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    samples.push_back(jsonl_sample(line, number, o));
    samples.back().prompt_len = static_cast<int>(tok.encode(samples.back().prompt).size());
    if (static_cast<int>(samples.size()) == o.num_prompts) break;
  }
  return cycle_to(std::move(samples), o.num_prompts, o.path);
}

}  // namespace shardlm::serve_bench
