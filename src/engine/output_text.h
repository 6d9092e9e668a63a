// The text of one request's output as it is generated: incrementally detokenized, with stop
// strings matched across token boundaries and the tail that could still start a stop string held
// back. Each Request owns one, and the engine's step pushes every sampled token into it, so that
// stop strings are decided where stop tokens and lengths are (Engine::check_stop).
#pragma once

#include <string>
#include <vector>

#include "engine/sampling_params.h"
#include "tokenizer/tokenizer.h"

namespace shardlm {

// Text of one request's output: detokenizes, finds stop strings, and holds back the tail that
// could still turn out to be the start of a stop string.
class OutputText {
 public:
  OutputText(const Tokenizer& tokenizer, const SamplingParams& params);
  // Returns true when a stop string completed with this token (the text is then cut there).
  bool push(int32_t token);
  // Text that can be sent now; at the end (final) everything left.
  std::string take_ready(bool final);

 private:
  IncrementalDetokenizer detok_;
  std::vector<std::string> stop_;
  bool include_stop_;
  size_t hold_ = 0;  // longest stop string - 1
  std::string text_;
  size_t sent_ = 0;
  bool stopped_ = false;
};

}  // namespace shardlm
