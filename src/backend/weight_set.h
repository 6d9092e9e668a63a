// The weights a device backend uploads at load, as a flat list: matrices (TensorViews into the
// mapped files) and fp32 vectors (norms, biases). The model layer lists them
// (model/weight_set_of.h); the backend knows nothing of layers.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace shardlm {

struct WeightVector {
  const float* data = nullptr;  // host memory; null entries are skipped
  int64_t n = 0;
};

struct WeightSet {
  std::vector<TensorView> matrices;  // views without data are skipped
  std::vector<WeightVector> vectors;
};

}  // namespace shardlm
