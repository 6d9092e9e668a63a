// The weights a device backend uploads at load, as a flat list: matrices (TensorViews into the
// mapped files) and fp32 vectors (norms, biases). The model layer lists them
// (model/weight_set_of.h); the backend knows nothing of layers. Backend::prepare_weights answers
// with the same list in the backend's memory: the handles the ops take.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace shardlm {

struct WeightVector {
  const float* data = nullptr;  // null entries are skipped
  int64_t n = 0;
  MemSpace space = MemSpace::kHost;
};

struct WeightSet {
  std::vector<TensorView> matrices;  // views without data are skipped
  std::vector<WeightVector> vectors;
  // Runs of `matrices` indices that ops take together with one input (Q/K/V, gate/up): a device
  // backend may place each run's copies end to end in one allocation, in this order, and then
  // multiply them as one matrix. A hint: the CPU backend ignores it, and a run is left apart when
  // its matrices are not all present, differ in row length, or are views of the first rows of a
  // wider matrix the set also lists.
  std::vector<std::vector<size_t>> adjacent;
  // Indices of `matrices` that are routed experts' gate, up and down (Backend::
  // runs_fp8_group_expert), in ascending order.
  std::vector<size_t> routed_experts;
  // Indices of `matrices` that a backend's own kernels read as they are, not through its matmul
  // (mixture-of-experts routers, latent attention's per-head k_b and v_b): a backend that
  // quantises linear layers at load (--quantization fp8) keeps these in BF16. Ascending.
  std::vector<size_t> kernel_read;
};

// What prepare_weights returns: `views` holds, entry for entry, the backend's copy of each weight
// of the set it was given (dtype, shape and memory space of the copy; an entry without data stays
// empty); the copies live as long as `memory` (shared by every holder of these views). On the CPU
// the views are the host weights themselves and `memory` is empty.
struct PreparedWeights {
  WeightSet views;
  std::shared_ptr<const void> memory;
};

}  // namespace shardlm
