// CudaBackend's state (its Impl), shared by the files that implement its ops: cuda_backend.cpp
// (the op table) and cuda_backend_linear.cpp (the linear layers and their hand-offs).
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_mla.h"
#include "backend/cuda/cuda_moe.h"
#include "backend/cuda/fp8_linear.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernel_trace.h"
#include "backend/cuda/op_profile.h"
#include "backend/cuda/quant_linear.h"
#include "backend/cuda/sample_buffers.h"
#include "backend/cuda/scratch.h"
#include "backend/cuda/step_timeline.h"
#include "backend/cuda/step_uploads.h"
#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm::cuda {

struct CudaBackend::Impl {
  explicit Impl(const CudaBackendOptions& o) : options(o) {
    if (device_count() == 0) {
      fail("the CUDA backend needs a GPU but none is visible; run with --device cpu");
    }
    // Before anything is allocated, so that a refused value leaks nothing.
    // SHARDLM_CUDA_RESIDUAL_EPILOGUE: where O and down add to the residual stream themselves
    // (adds_in_epilogue): decode batches (default), 0 nowhere, all everywhere (to compare).
    if (const char* e = std::getenv("SHARDLM_CUDA_RESIDUAL_EPILOGUE")) {
      const std::string v(e);
      if (v != "0" && v != "all") {
        fail("SHARDLM_CUDA_RESIDUAL_EPILOGUE={}: use 0 (no add in an epilogue) or all (at every "
             "batch size), or leave it unset (decode batches)",
             v);
      }
      residual_epilogue = v == "0" ? Epilogue::kNone : Epilogue::kAll;
    }
    SHARDLM_CUDA_CHECK(cudaSetDevice(o.device));
    trace = std::make_unique<KernelTrace>();  // before any kernel
    SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    size_t total = 0;  // the context exists now; what this process allocates comes after
    SHARDLM_CUDA_CHECK(cudaMemGetInfo(&free_at_start, &total));
    gemm = std::make_unique<Gemm>(stream);
    if (o.fp8_weights) {
      check_fp8_device(o.device);
      fp8 = std::make_unique<Fp8Linear>(stream, *gemm, o.max_batch_tokens, o.max_matmul_k);
    }
    uploads = std::make_unique<StepUploads>(stream);
    timeline = std::make_unique<StepTimeline>(stream);
    sampling = std::make_unique<SampleBuffers>(stream, timeline.get());
    profile = std::make_unique<OpProfile>(stream);
    graphs_enabled = o.graphs && env_flag("SHARDLM_CUDA_GRAPHS", true) &&
                     !env_flag("SHARDLM_CUDA_PROFILE", false);
    // SHARDLM_CUDA_DECODE_ATTENTION=0: decode batches on the per-row kernel too (to compare).
    split_k_decode = env_flag("SHARDLM_CUDA_DECODE_ATTENTION", true);
    // SHARDLM_CUDA_PREFILL_ATTENTION=0: prefill batches on the per-row kernel (to compare).
    tensor_core_prefill = env_flag("SHARDLM_CUDA_PREFILL_ATTENTION", true);
    // SHARDLM_CUDA_FUSED_QKV=0: Q/K/V as three GEMMs even where they lie end to end (to compare).
    fused_qkv = env_flag("SHARDLM_CUDA_FUSED_QKV", true);
    // SHARDLM_CUDA_BF16_HANDOFF=0: norms and SiLU·up write fp32 and the GEMMs convert, or the FP8
    // GEMMs quantise, their inputs in passes of their own (to compare).
    bf16_handoff = env_flag("SHARDLM_CUDA_BF16_HANDOFF", true);
    // SHARDLM_CUDA_BF16_GATE_UP=0: the handed-off MLP's gate and up GEMMs write fp32 (to compare).
    bf16_gate_up = env_flag("SHARDLM_CUDA_BF16_GATE_UP", true);
    // SHARDLM_CUDA_GEMV_NORM=0: at one token the norm runs as a kernel of its own ahead of the
    // GEMV, instead of inside it (to compare).
    norm_in_gemv = env_flag("SHARDLM_CUDA_GEMV_NORM", true);
    // SHARDLM_CUDA_QKV_ROPE=0: at one token rope and the KV store run as a kernel of their own
    // after the Q/K/V GEMV, instead of in its epilogue (to compare).
    qkv_rope = env_flag("SHARDLM_CUDA_QKV_ROPE", true);
    reserve_bf16(o.max_batch_tokens * std::max<int64_t>(o.max_matmul_k, 1));
    // Splits happen only below 256 (row, head) items (attention.cu), so this never grows.
    attention_scratch(attention_scratch_floats(255, 1, kMaxAttentionHeadDim, 1 << 30));
  }
  ~Impl() {
    if (stream) cudaStreamSynchronize(stream);
    trace.reset();  // its report, once the last kernel ran
    moe.reset();
    mla.reset();
    drop_graphs();
    profile.reset();
    sampling.reset();
    timeline.reset();
    uploads.reset();
    fp8.reset();
    quant.reset();
    gemm.reset();
    for (void* p : buffers) cudaFree(p);
    cudaFree(x_bf16);
    cudaFree(rope_freq);
    cudaFree(attn_scratch);
    cudaFree(fused);
    if (stream) cudaStreamDestroy(stream);
  }

  // The bf16 copy of a matmul's input; grows only for inputs wider than planned.
  void reserve_bf16(int64_t n) {
    grow_scratch(x_bf16, x_bf16_capacity, static_cast<size_t>(n), stream, "BF16 inputs");
  }

  // The output of matrices multiplied as one (Q/K/V) before it is split to the callers' buffers,
  // n elements; grows outside graph capture only, and then straight to `ahead` (the most a step of
  // this kind can want), so that it moves once instead of with every larger step, each move
  // staling the captured graphs. Null when a capture would need it larger.
  float* fused_output(int64_t n, int64_t ahead) {
    const auto want = static_cast<size_t>(n);
    if (want <= fused_capacity) return fused;
    if (capturing) return nullptr;
    return grow_scratch(fused, fused_capacity, std::max(want, static_cast<size_t>(ahead)), stream,
                        "fused Q/K/V");
  }

  // Scratch for the attention kernel's split partial results.
  float* attention_scratch(size_t n) {
    return grow_scratch(attn_scratch, attn_scratch_capacity, n, stream, "attention");
  }

  // The rope frequencies on the device, uploaded again only when they change.
  const float* rope_frequencies(const RopeParams& p) {
    if (p.inv_freq != rope_freq_host) {
      SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
      cudaFree(rope_freq);
      scratch_moved("rope frequencies");
      SHARDLM_CUDA_CHECK(cudaMalloc(&rope_freq, p.inv_freq.size() * sizeof(float)));
      SHARDLM_CUDA_CHECK(cudaMemcpy(rope_freq, p.inv_freq.data(), p.inv_freq.size() * sizeof(float),
                                    cudaMemcpyHostToDevice));
      rope_freq_host = p.inv_freq;
    }
    return rope_freq;
  }

  void drop_graphs() {
    for (auto& [key, g] : graphs) cudaGraphExecDestroy(g.exec);
    graphs.clear();
    seen.clear();
  }

  struct Graph {
    cudaGraphExec_t exec;
    uint64_t generation;  // of the step buffers it was captured on
    uint64_t scratch;     // scratch_generation() when it was captured
  };
  std::map<GraphKey, Graph> graphs;
  std::set<GraphKey> seen;  // shapes run once op by op
  bool graphs_enabled = true;
  bool capturing = false;
  bool split_k_decode = true;       // decode batches on the split-K kernel (attention_decode.cu)
  bool tensor_core_prefill = true;  // prefill batches on attention_prefill.cu
  bool fused_qkv = true;            // matmul_shared_input's one GEMM over adjacent matrices
  bool bf16_handoff = true;
  bool bf16_gate_up = true;
  bool norm_in_gemv = true;
  bool qkv_rope = true;
  enum class Epilogue { kNone, kGemv, kAll };
  Epilogue residual_epilogue = Epilogue::kGemv;

  CudaBackendOptions options;
  cudaStream_t stream = nullptr;
  size_t free_at_start = 0;  // device bytes free once the context was made
  std::unique_ptr<Gemm> gemm;
  std::unique_ptr<Fp8Linear> fp8;      // --quantization fp8
  std::unique_ptr<QuantLinear> quant;  // made when a GGUF model's matrices stay quantised
  std::unique_ptr<StepUploads> uploads;
  std::unique_ptr<StepTimeline> timeline;  // SHARDLM_STEP_PROFILE=1
  std::unique_ptr<SampleBuffers> sampling;
  std::unique_ptr<OpProfile> profile;
  std::unique_ptr<KernelTrace> trace;  // SHARDLM_CUDA_KERNEL_TRACE=1
  std::shared_ptr<std::atomic<int64_t>> weight_bytes = std::make_shared<std::atomic<int64_t>>(0);
  std::unique_ptr<CudaMoe> moe;  // made at the first MoE / MLA call
  std::unique_ptr<CudaMla> mla;
  MlaStepShape mla_step;  // the step numbered mla_step_id's, as CudaMla::run takes it
  uint64_t mla_step_id = UINT64_MAX;
  std::vector<void*> buffers;
  uint16_t* x_bf16 = nullptr;  // [max_batch_tokens][max_matmul_k] bf16
  size_t x_bf16_capacity = 0;
  float* rope_freq = nullptr;
  std::vector<float> rope_freq_host;
  float* attn_scratch = nullptr;
  size_t attn_scratch_capacity = 0;
  float* fused = nullptr;  // fused_output
  size_t fused_capacity = 0;
};

}  // namespace shardlm::cuda
