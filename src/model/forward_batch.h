// The input of one forward step: which tokens to run, at which positions, in which KV slots, for
// which sequences, and whose logits to return. This is what the master sends every rank each step.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace shardlm {

struct ForwardBatch {
  std::vector<int32_t> tokens;     // [n_tokens]
  std::vector<int32_t> positions;  // [n_tokens]
  std::vector<int32_t> slots;      // [n_tokens] KV cache slot of each token
  struct Seq {
    int32_t first_row = 0;  // index of its first token in `tokens`
    int32_t n_tokens = 0;
    int32_t n_past = 0;  // tokens already in the cache before this step
    std::vector<int32_t> block_table;
  };
  std::vector<Seq> seqs;
  std::vector<int32_t> logit_rows;  // token rows whose logits are wanted, in output order

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  // Appends a sequence's chunk; fills positions and slots from its block table.
  void add_sequence(const std::vector<int32_t>& chunk, int32_t n_past,
                    const std::vector<int32_t>& block_table, int block_size, bool all_logits);
};

}  // namespace shardlm
