// FP8 checkpoints whose matrices the loader dequantises to BF16 as it binds them, before any
// backend sees them: those with block-wise scales (DeepSeek-V3/R1, Qwen3-*-FP8; no backend here
// multiplies by block scales) and those of mixture-of-experts or latent-attention models (their
// expert and latent-attention ops take BF16, F32 or GGUF types). Only the tensors the model binds
// are converted, once each, so a checkpoint's extra tensors (DeepSeek-V3's multi-token-prediction
// layer) cost nothing. A dense checkpoint with per-tensor or per-channel scales keeps its FP8
// matrices instead (attach_fp8_scales), which a CUDA GPU runs in FP8.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/fp8_checkpoint.h"
#include "model/model_config.h"

namespace shardlm {

bool dequantised_at_bind(const Fp8CheckpointConfig& q, const ModelConfig& c);

// Row-major BF16 of FP8 matrix w (its codes times s.at(r, c), rounded to nearest even):
// out[rows * cols]. Large matrices are split over threads.
void dequantise_fp8_matrix(const TensorView& w, const Fp8Scales& s, uint16_t* out);

// Stands between the file's tensors and the binder: an F8_E4M3 tensor comes back as its BF16
// copy when the checkpoint is dequantised at bind (the copies live in `storage`, the model's),
// else as it is. Any F8_E4M3 tensor without an FP8 quantization_config is an Error naming it.
class Fp8BindView {
 public:
  Fp8BindView(const Fp8CheckpointConfig& q, bool dequantise, FileTensorLookup find,
              std::vector<std::unique_ptr<uint16_t[]>>& storage, std::string source);

  const TensorView* operator()(const TensorView* t);
  int64_t converted_bytes() const { return bytes_; }  // BF16 bytes made so far
  size_t converted() const { return copies_.size(); }

 private:
  const Fp8CheckpointConfig& q_;
  const bool dequantise_;
  FileTensorLookup find_;
  std::vector<std::unique_ptr<uint16_t[]>>& storage_;
  std::string source_;
  std::map<const TensorView*, TensorView> copies_;  // file tensor -> its BF16 copy
  int64_t bytes_ = 0;
};

}  // namespace shardlm
