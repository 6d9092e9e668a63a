// split_micro_batches: group sequences by token count, then copy their rows.
#include "parallel/micro_batch.h"

#include <algorithm>

namespace shardlm::parallel {

namespace {

// The sequences [first, last) of `b` as a batch of their own, rows renumbered from 0.
MicroBatch slice(const ForwardBatch& b, size_t first, size_t last) {
  MicroBatch m;
  const int32_t row0 = b.seqs[first].first_row;
  const int32_t row1 = b.seqs[last - 1].first_row + b.seqs[last - 1].n_tokens;
  m.batch.tokens.assign(b.tokens.begin() + row0, b.tokens.begin() + row1);
  m.batch.positions.assign(b.positions.begin() + row0, b.positions.begin() + row1);
  m.batch.slots.assign(b.slots.begin() + row0, b.slots.begin() + row1);
  for (size_t s = first; s < last; ++s) {
    ForwardBatch::Seq seq = b.seqs[s];
    seq.first_row -= row0;
    m.batch.seqs.push_back(std::move(seq));
  }
  for (size_t i = 0; i < b.logit_rows.size(); ++i) {
    const int32_t r = b.logit_rows[i];
    if (r >= row0 && r < row1) {
      m.batch.logit_rows.push_back(r - row0);
      m.out_index.push_back(static_cast<int>(i));
    }
  }
  return m;
}

}  // namespace

std::vector<MicroBatch> split_micro_batches(const ForwardBatch& b, int n, int64_t min_tokens) {
  std::vector<MicroBatch> out;
  n = static_cast<int>(std::min<int64_t>(n, b.size() / std::max<int64_t>(1, min_tokens)));
  // Sequences in row order with ascending logit rows (as the engine builds batches) give each
  // micro-batch a contiguous run of the step's logit rows; anything else runs whole.
  const bool ordered = std::is_sorted(b.logit_rows.begin(), b.logit_rows.end());
  if (n <= 1 || b.seqs.size() <= 1 || !ordered) {
    MicroBatch whole{b, {}};
    for (size_t i = 0; i < b.logit_rows.size(); ++i) whole.out_index.push_back(static_cast<int>(i));
    out.push_back(std::move(whole));
    return out;
  }
  const int64_t target = (b.size() + n - 1) / n;  // tokens per micro-batch
  size_t first = 0;
  int64_t tokens = 0;
  for (size_t s = 0; s < b.seqs.size(); ++s) {
    tokens += b.seqs[s].n_tokens;
    const bool last_seq = s + 1 == b.seqs.size();
    const bool room_left = static_cast<int>(out.size()) + 1 < n;
    if (last_seq || (tokens >= target && room_left)) {
      out.push_back(slice(b, first, s + 1));
      first = s + 1;
      tokens = 0;
    }
  }
  return out;
}

}  // namespace shardlm::parallel
