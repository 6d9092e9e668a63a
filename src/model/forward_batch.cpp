// ForwardBatch construction.
#include "model/forward_batch.h"

#include "kv/kv_cache.h"

namespace shardlm {

void ForwardBatch::add_sequence(const std::vector<int32_t>& chunk, int32_t n_past,
                                const std::vector<int32_t>& block_table, int block_size,
                                bool all_logits) {
  Seq s;
  s.first_row = static_cast<int32_t>(tokens.size());
  s.n_tokens = static_cast<int32_t>(chunk.size());
  s.n_past = n_past;
  s.block_table = block_table;
  for (size_t i = 0; i < chunk.size(); ++i) {
    const int32_t pos = n_past + static_cast<int32_t>(i);
    tokens.push_back(chunk[i]);
    positions.push_back(pos);
    slots.push_back(kv_slot(block_table, pos, block_size));
    if (all_logits || i + 1 == chunk.size())
      logit_rows.push_back(s.first_row + static_cast<int32_t>(i));
  }
  seqs.push_back(std::move(s));
}

}  // namespace shardlm
