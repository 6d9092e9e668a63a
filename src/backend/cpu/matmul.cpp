// matmul: quantise the activations once into the workspace, then split (row chunk x token chunk)
// work items over the pool, each handled by the ISA's tiled gemm kernel.
#include "backend/cpu/matmul.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {

namespace {

// Largest activation bytes per element over all formats (BlockQ8A: 40 bytes per 32), plus slack.
constexpr int64_t kActBytesPer32 = 40;

struct MatmulJob {
  const CpuKernels* kern;
  int64_t k, n, n_tokens;
  const float* x;  // fp32 activations (quantised into `a` unless the weights are float)
  const uint8_t* w;
  size_t w_stride;
  const uint8_t* a;
  size_t a_stride;
  float* y;
  int64_t row_chunk, tok_chunk, n_row_chunks, n_items;
  std::atomic<int64_t> next{0};
};

void quantize_tokens(MatmulJob& j, int64_t begin, int64_t end) {
  uint8_t* a = const_cast<uint8_t*>(j.a);  // the workspace, owned by the caller of matmul
  for (int64_t t = begin; t < end; ++t) j.kern->quantize(j.x + t * j.k, a + t * j.a_stride, j.k);
}

void run_items(MatmulJob& j) {
  while (true) {
    const int64_t item = j.next.fetch_add(1, std::memory_order_relaxed);
    if (item >= j.n_items) return;
    const int64_t r0 = (item % j.n_row_chunks) * j.row_chunk;
    const int64_t t0 = (item / j.n_row_chunks) * j.tok_chunk;
    const int64_t nr = std::min(j.row_chunk, j.n - r0);
    const int64_t nt = std::min(j.tok_chunk, j.n_tokens - t0);
    j.kern->gemm(j.k, j.w + r0 * j.w_stride, j.w_stride, j.a + t0 * j.a_stride, j.a_stride,
                 j.y + t0 * j.n + r0, j.n, nr, nt);
  }
}

// Chooses chunk sizes: tokens in chunks of up to 64 (activations of a chunk stay in L2), rows in
// multiples of the kernel's tile (and of 16, so chunks never share a cache line of y) with a few
// items per thread for load balance on a shared machine.
void plan_chunks(MatmulJob& j, int nth, int tile_rows) {
  j.tok_chunk = std::min<int64_t>(j.n_tokens, 64);
  const int64_t n_tok_chunks = (j.n_tokens + j.tok_chunk - 1) / j.tok_chunk;
  const int64_t align = std::max(16, tile_rows);
  const int64_t want_items = nth == 1 ? 1 : nth * 4;
  const int64_t want_row_chunks =
      std::max<int64_t>(1, (want_items + n_tok_chunks - 1) / n_tok_chunks);
  int64_t rc = (j.n + want_row_chunks - 1) / want_row_chunks;
  rc = std::max(align, (rc + align - 1) / align * align);
  if (j.n_tokens > 1) rc = std::min<int64_t>(rc, 256);  // keep a chunk's weights in L2
  j.row_chunk = rc;
  j.n_row_chunks = (j.n + rc - 1) / rc;
  j.n_items = j.n_row_chunks * n_tok_chunks;
}

}  // namespace

void MatmulWorkspace::reserve(int64_t n_tokens, int64_t max_k) {
  const size_t need = static_cast<size_t>(n_tokens) * static_cast<size_t>((max_k + 31) / 32) *
                      static_cast<size_t>(kActBytesPer32);
  if (buffer_.size() < need) buffer_.resize(need);
}

void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws) {
  matmul(w, x, n_tokens, y, pool, ws, active_cpu_isa());
}

void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws, CpuIsa isa) {
  const int64_t k = w.ne[0], n = w.rows();
  const CpuKernels kern = cpu_kernels(w.dtype, isa);
  if (kern.gemm == nullptr || !row_fits_blocks(w.dtype, k)) {
    throw std::invalid_argument("matmul: weight " + w.name + " of type " +
                                std::string(dtype_name(w.dtype)) + " and shape " + w.shape_str() +
                                " is not supported");
  }
  if (n_tokens <= 0 || n == 0) return;
  MatmulJob job;
  job.kern = &kern;
  job.k = k;
  job.n = n;
  job.n_tokens = n_tokens;
  job.w = static_cast<const uint8_t*>(w.data);
  job.w_stride = w.row_size();
  job.y = y;
  if (kern.quantize != nullptr) {
    job.a_stride = act_row_bytes(w.dtype, k);
    ws.reserve(n_tokens, k);  // no-op when the caller reserved enough at start-up
    job.a = ws.data();
    job.x = x;
    if (n_tokens < 4 || pool.size() == 1) {
      quantize_tokens(job, 0, n_tokens);
    } else {
      MatmulJob* jp = &job;  // one pointer: the std::function stays in its small buffer
      pool.parallel_for(n_tokens, [jp](int64_t b, int64_t e) { quantize_tokens(*jp, b, e); });
    }
  } else {
    job.a = reinterpret_cast<const uint8_t*>(x);
    job.a_stride = static_cast<size_t>(k) * sizeof(float);
  }
  plan_chunks(job, pool.size(), kern.tile_rows);
  if (pool.size() == 1 || job.n_items == 1) {
    run_items(job);
    return;
  }
  MatmulJob* jp = &job;
  pool.run([jp](int, int) { run_items(*jp); });
}

}  // namespace shardlm::cpu
