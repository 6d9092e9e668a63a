// The rope ops' parameters (backend/rope_params.h) for a model: base frequencies divided by
// llama3 or YaRN scaling factors, if any, over the rotated part of a head.
#pragma once

#include "backend/rope_params.h"
#include "model/model_config.h"

namespace shardlm {

RopeParams rope_params(const ModelConfig& c);

}  // namespace shardlm
