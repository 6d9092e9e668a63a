// Backend: the checks every backend makes on the handles its ops receive.
#include "backend/backend.h"

namespace shardlm {

namespace {
const char* space_name(MemSpace s) {
  return s == MemSpace::kHost ? "host" : "device";
}
}  // namespace

StepArrays Backend::upload_step(const StepIndices& s, uint64_t step) {
  const MemSpace host = MemSpace::kHost;
  StepArrays a;
  a.tokens = {s.tokens, s.n_tokens, host, step};
  a.positions = {s.positions, s.n_tokens, host, step};
  a.slots = {s.slots, s.n_tokens, host, step};
  a.logit_rows = {s.logit_rows, s.n_logit_rows, host, step};
  a.seqs = {s.seqs, s.n_seqs, step};
  return a;
}

const int32_t* Backend::step_array(const IndexArray& a) const {
  if (a.step != step_) {
    fail(
        "internal: the {} backend was given an index array of step {} during step {}; arrays are "
        "valid only until the next begin_step",
        name(), a.step, step_);
  }
  if (a.space != memory_space()) {
    fail("internal: the {} backend was given an index array in {} memory; it reads {} memory",
         name(), space_name(a.space), space_name(memory_space()));
  }
  return a.data;
}

const AttentionSeq* Backend::step_seqs(const StepSeqs& s) const {
  if (s.step != step_) {
    fail("internal: the {} backend was given the attention sequences of step {} during step {}",
         name(), s.step, step_);
  }
  return s.host;
}

void Backend::check_kv(const KvLayerView& kv) const {
  if (kv.dtype != kv_dtype() || kv.space != memory_space()) {
    fail("internal: the {} backend keeps its KV cache as {} in {} memory, not {} in {} memory",
         name(), dtype_name(kv_dtype()), space_name(memory_space()), dtype_name(kv.dtype),
         space_name(kv.space));
  }
}

void Backend::check_weight(const TensorView& w) const {
  if (w.space != memory_space()) {
    fail(
        "internal: weight '{}' is in {} memory but the {} backend reads {} memory; use the views "
        "prepare_weights returned",
        w.name, space_name(w.space), name(), space_name(memory_space()));
  }
}

}  // namespace shardlm
