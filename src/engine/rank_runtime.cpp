// RankRuntime: load -> backend -> upload -> KV size.
#include "engine/rank_runtime.h"

#include <cstdlib>

#include "engine/kv_sizing.h"
#include "model/model_shape.h"
#include "model/weight_set_of.h"

namespace shardlm {

RankRuntime::RankRuntime(const EngineArgs& args, Placement placement, std::unique_ptr<Model> loaded)
    : placement_(placement), model_(std::move(loaded)) {
  if (!model_) model_ = load_model(args.model, args.load_format);
  const ModelConfig& c = model_->config;
  // The backend first in a group too: the handshake reports its device, and NCCL connects on its
  // stream.
  backend_ = make_backend(backend_spec(args, c), model_shape(c));
  if (placement_ == Placement::kAlone) weights_ = prepare_model_weights(*backend_, c, model_->weights);
  size_kv_cache(args);
}

void RankRuntime::size_kv_cache(const EngineArgs& args) {
  const ModelConfig& c = model_->config;
  const size_t elem = backend_->kv_element_bytes();
  kv_shape_ = {c.n_layers, c.kv_dim(), args.block_size, 0, elem, c.kv_cache_values()};
  if (placement_ == Placement::kInGroup) {
    kv_shape_.n_blocks = kv_blocks(args, c);  // fp32's count, the same on every rank
    return;
  }
  const DeviceKvSizing sized = size_kv_on_device(args, *model_, *backend_);
  kv_shape_.n_blocks = sized.n_blocks > 0 ? sized.n_blocks : kv_blocks(args, c, elem);
  kv_summary_ = sized.summary;
}

std::unique_ptr<ModelRunner> RankRuntime::make_runner(int64_t max_batch_tokens) {
  const char* ds = std::getenv("SHARDLM_DEVICE_SAMPLING");
  const bool device_sampling = !(ds && std::string(ds) == "0");
  return std::make_unique<TransformerRunner>(*model_, *backend_, kv_shape_, max_batch_tokens,
                                             device_sampling, &weights_);
}

}  // namespace shardlm
