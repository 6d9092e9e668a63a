// The decode GEMV on FP8 weights (1 to kGemvMaxTokens tokens) on BF16 tensor cores: the E4M3
// codes become BF16 by a few integer operations (exact, subnormals included) and go into mma.sync
// m16n8k16 with the tokens as the mma's columns, so that no weight takes a conversion instruction
// or a multiply of its own. x (normed in the kernel at one token, as gemv_staged.cuh does) is
// rounded to BF16 once per block in shared memory; the sums are fp32. It takes gemv_staged.cuh's
// arguments (segments, gate/up with SiLU, Q/K/V with rope_store_kv in the epilogue). gemv_fp8.cu
// runs it for 2 to 8 tokens (gemv_fp8_mma_takes), where it reads each weight once for the whole
// batch; a token's outputs do not depend on the other tokens (with SHARDLM_CUDA_FP8_GEMV_MMA=all
// one token runs here too: the same bits alone and in any batch up to 8). CPU reference: the FP8
// tests' dequantise-then-fp64 product on x rounded to BF16 (tests/cuda/test_cuda_fp8.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/gemv_fp8.cuh"
#include "backend/cuda/gemv_staged.cuh"

namespace shardlm::cuda {

// y[s][t] (+)= (rms_norm(x[t]) or x[t]) . W_s rows, times each row's scale, for n_tokens tokens
// (a.norm_w at one token only); gate: y[0][t][j] = silu(gate_j) * up_j over a.w = {gate, up}.
// rows: the segments' total rows (n for gate/up). x: [n_tokens][k] fp32, 16-byte aligned.
void gemv_mma_fp8(const StagedGemv& a, int64_t k, int64_t rows, bool gate, const float* x,
                  int64_t n_tokens, cudaStream_t stream);
// gemv_staged_qkv_rope (gemv_staged.cuh) on FP8 weights here.
void gemv_mma_fp8_qkv_rope(const StagedGemv& a, int64_t k, const float* x, cudaStream_t stream);

}  // namespace shardlm::cuda
