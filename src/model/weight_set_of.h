// A model's weights as the flat list a backend prepares (backend/weight_set.h), and the model's
// weights bound to what the backend returned: the views the forward passes to the ops.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "backend/weight_set.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace shardlm {

// The embedding and the output projection when `w` has them (a pipeline stage may not), the final
// norm, and every layer's matrices, norms and biases: dense, mixture-of-experts and MLA.
WeightSet weight_set_of(const ModelConfig& c, const ModelWeights& w);

// `weights` is the model's ModelWeights with every weight replaced by the backend's view of it;
// the backend's copies live as long as `memory` (shared by every copy of this struct).
struct BackendWeights {
  ModelWeights weights;
  std::shared_ptr<const void> memory;
};

// Prepares w on the backend (one upload on a device backend) and binds the result.
BackendWeights prepare_model_weights(Backend& backend, const ModelConfig& c, const ModelWeights& w);

}  // namespace shardlm
