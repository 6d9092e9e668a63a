// The flat list of weights a device backend uploads (backend/weight_set.h) for a model's layers:
// matrices and fp32 vectors, what its forward passes to the ops.
#pragma once

#include "backend/weight_set.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace shardlm {

// The embedding and the output projection when `w` has them (a pipeline stage may not), the final
// norm, and every layer's matrices, norms and biases.
WeightSet weight_set_of(const ModelConfig& c, const ModelWeights& w);

}  // namespace shardlm
