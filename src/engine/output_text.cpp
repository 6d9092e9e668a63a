// OutputText: stop strings over streamed text.
#include "engine/output_text.h"

#include <algorithm>
#include <cstdint>

namespace shardlm {

OutputText::OutputText(const Tokenizer& tokenizer, const SamplingParams& params)
    : detok_(tokenizer, params.skip_special_tokens),
      stop_(params.stop),
      include_stop_(params.include_stop_str_in_output) {
  for (const std::string& s : stop_) hold_ = std::max(hold_, s.size() - 1);
}

bool OutputText::push(int32_t token) {
  if (stopped_) return true;
  const size_t old_size = text_.size();
  text_ += detok_.push(token);
  if (stop_.empty() || text_.size() == old_size) return false;
  // A match must end in the new text, so it starts at most hold_ bytes before it.
  const size_t from = old_size > hold_ ? old_size - hold_ : 0;
  size_t best = std::string::npos, best_len = 0;
  for (const std::string& s : stop_) {
    const size_t pos = text_.find(s, from);
    if (pos < best) best = pos, best_len = s.size();
  }
  if (best == std::string::npos) return false;
  text_.resize(std::max(sent_, include_stop_ ? best + best_len : best));
  stopped_ = true;
  return true;
}

std::string OutputText::take_ready(bool final) {
  if (final && !stopped_) text_ += detok_.flush();
  size_t end = text_.size();
  if (!final && !stopped_) {
    end = text_.size() > hold_ ? text_.size() - hold_ : 0;
    // Never split a UTF-8 character.
    while (end > sent_ && end < text_.size() && (static_cast<uint8_t>(text_[end]) & 0xC0) == 0x80) {
      --end;
    }
  }
  if (end <= sent_) return {};
  std::string out = text_.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

}  // namespace shardlm
