// The backend's view of a model's sizes (backend/model_shape.h), from its config.
#pragma once

#include "backend/model_shape.h"
#include "model/model_config.h"

namespace shardlm {

ModelShape model_shape(const ModelConfig& c);

}  // namespace shardlm
