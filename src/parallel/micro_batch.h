// Splitting one step's batch into micro-batches for pipeline parallelism: whole sequences, in
// order, in groups of near-equal token counts, so stage s can run micro-batch i + 1 while stage
// s + 1 runs micro-batch i. Every rank splits the broadcast batch the same way, so the split needs
// no message of its own. Each sequence's rows stay together, so attention and the (batch-invariant)
// matmuls give the same numbers as the whole batch.
#pragma once

#include <vector>

#include "model/forward_batch.h"

namespace shardlm::parallel {

struct MicroBatch {
  ForwardBatch batch;          // rows renumbered from 0
  std::vector<int> out_index;  // for each of batch.logit_rows: its index in the step's logit_rows
};

// At most `n` micro-batches, each of at least `min_tokens` tokens (fewer when the batch has fewer
// sequences or tokens); n <= 1 gives the batch itself. The minimum keeps memory-bound steps (a
// few decode tokens per sequence) whole: splitting them would read every weight once per
// micro-batch, costing more than the overlap gains (docs/benchmarks.md).
std::vector<MicroBatch> split_micro_batches(const ForwardBatch& batch, int n,
                                            int64_t min_tokens = 1);

}  // namespace shardlm::parallel
