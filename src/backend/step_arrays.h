// A forward step's integer arrays as the backend holds them: what Backend::begin_step returns and
// the ops take. Each handle names its memory space and the step it belongs to, so a backend can
// refuse an array of another step (whose device copy the next step overwrote) or a host array
// where it needs its own memory, instead of reading the wrong bytes.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace shardlm {

struct AttentionSeq;

// n int32 values (token ids, positions, KV slots or logit rows) in `space` memory.
struct IndexArray {
  const int32_t* data = nullptr;
  int64_t n = 0;
  MemSpace space = MemSpace::kHost;
  uint64_t step = 0;  // the begin_step that made it
};

// The step's attention sequences: the host list (block tables in host memory) for the backend's
// own use; a device backend keeps the step's device form and checks `step`.
struct StepSeqs {
  const AttentionSeq* host = nullptr;
  int n = 0;
  uint64_t step = 0;
};

struct StepArrays {
  IndexArray tokens, positions, slots, logit_rows;
  StepSeqs seqs;
};

}  // namespace shardlm
