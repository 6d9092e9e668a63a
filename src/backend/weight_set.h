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
