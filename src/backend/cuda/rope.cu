// RoPE kernel: one block per token, one thread per (head, pair).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/rope.cuh"

namespace shardlm::cuda {

namespace {
__global__ void rope_kernel(float* x, const int32_t* positions, int n_heads, int head_dim,
                            bool neox, const float* inv_freq) {
  const int half = head_dim / 2;
  float* row = x + static_cast<int64_t>(blockIdx.x) * n_heads * head_dim;
  const double pos = positions[blockIdx.x];
  for (int item = threadIdx.x; item < n_heads * half; item += blockDim.x) {
    const int h = item / half, i = item % half;
    double s, c;
    sincos(pos * static_cast<double>(inv_freq[i]), &s, &c);
    const float cs = static_cast<float>(c), sn = static_cast<float>(s);
    float* v = row + h * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * cs - x1 * sn;
    v[b] = x0 * sn + x1 * cs;
  }
}
}  // namespace

void rope(float* x, const int32_t* positions, int64_t n_tokens, int n_heads, int head_dim,
          bool neox, const float* inv_freq, cudaStream_t stream) {
  if (n_tokens == 0) return;
  const int items = n_heads * head_dim / 2;
  const int threads = items >= 256 ? 256 : ((items + 31) / 32) * 32;
  rope_kernel<<<static_cast<unsigned>(n_tokens), threads, 0, stream>>>(x, positions, n_heads,
                                                                       head_dim, neox, inv_freq);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
