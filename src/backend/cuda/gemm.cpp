// Gemm: cuBLASLt plans per shape, or one cublasGemmEx call. Both libraries are column-major, so
// the row-major [n][k] weight is a k x n column-major matrix used transposed ("TN"), the
// [n_tokens][k] input a k x n_tokens matrix, and the row-major output an n x n_tokens matrix.
#include "backend/cuda/gemm.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/scratch.h"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

void check_int_sizes(const GemmShape& s) {
  if (s.k > INT_MAX || s.n > INT_MAX || s.n_tokens > INT_MAX) {
    fail("internal: matmul of {} x {} by {} tokens exceeds cuBLAS's int sizes", s.n, s.k,
         s.n_tokens);
  }
}

bool lt_ok(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS;
}

// A column-major layout of rows x cols with leading dimension ld, batched with `stride` elements
// between the batch's matrices.
bool make_layout(cublasLtMatrixLayout_t& out, cudaDataType_t type, int64_t rows, int64_t cols,
                 int64_t ld, int batch, int64_t stride) {
  if (!lt_ok(cublasLtMatrixLayoutCreate(&out, type, static_cast<uint64_t>(rows),
                                        static_cast<uint64_t>(cols), ld))) {
    return false;
  }
  if (batch == 1) return true;
  return lt_ok(cublasLtMatrixLayoutSetAttribute(out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch,
                                                sizeof(batch))) &&
         lt_ok(cublasLtMatrixLayoutSetAttribute(out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                &stride, sizeof(stride)));
}

}  // namespace

Gemm::Gemm(cudaStream_t stream) : stream_(stream) {
  if (const char* p = std::getenv("SHARDLM_CUDA_GEMM"); p && *p) {  // before anything is made
    const std::string v(p);
    if (v != "ex" && v != "lt") {
      fail("SHARDLM_CUDA_GEMM must be ex (cublasGemmEx) or lt (cuBLASLt), got '{}'", v);
    }
    if (v == "lt") path_ = GemmPath::kLt;
  }
  SHARDLM_CUBLAS_CHECK(cublasCreate(&handle_));
  SHARDLM_CUBLAS_CHECK(cublasSetStream(handle_, stream));
  SHARDLM_CUBLAS_CHECK(cublasLtCreate(&lt_));
  // An explicit workspace, so that GEMMs captured into CUDA graphs allocate nothing. The two
  // handles share it: their calls run one after another on the one stream.
  SHARDLM_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
  SHARDLM_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes));
}

Gemm::~Gemm() {
  for (auto& [shape, p] : plans_) destroy(p);
  if (lt_) cublasLtDestroy(lt_);
  if (handle_) cublasDestroy(handle_);
  cudaFree(workspace_);
  cudaFree(ptrs_);
}

void Gemm::destroy(Plan& p) {
  if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  if (p.a) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b) cublasLtMatrixLayoutDestroy(p.b);
  if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  p = Plan{};
}

Gemm::Plan Gemm::make_plan(const GemmShape& s) {
  Plan p;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  bool ok =
      lt_ok(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F)) &&
      lt_ok(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta))) &&
      lt_ok(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  ok = ok && make_layout(p.a, CUDA_R_16BF, s.k, s.n, s.k, s.batch, s.n * s.k) &&
       make_layout(p.b, CUDA_R_16BF, s.k, s.n_tokens, s.k, s.batch, 0) &&
       make_layout(p.c, CUDA_R_32F, s.n, s.n_tokens, s.n, s.batch, s.y_stride);
  cublasLtMatmulPreference_t pref = nullptr;
  ok = ok && lt_ok(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = kWorkspaceBytes;
  ok = ok && lt_ok(cublasLtMatmulPreferenceSetAttribute(
                 pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  ok = ok && lt_ok(cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.c, p.c, pref,
                                                  kMaxCandidates, p.results, &p.found));
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (!ok || p.found == 0) {
    destroy(p);
    spdlog::debug("cuBLASLt has no BF16 GEMM for {} x {} by {} tokens (batch {}): cublasGemmEx",
                  s.n, s.k, s.n_tokens, s.batch);
    return p;
  }
  p.ok = true;
  return p;
}

Gemm::Plan& Gemm::plan(const GemmShape& s) {
  auto it = plans_.find(s.key());
  if (it == plans_.end()) it = plans_.emplace(s.key(), make_plan(s)).first;
  return it->second;
}

int Gemm::candidates(const GemmShape& s) {
  check_int_sizes(s);
  return plan(s).found;
}

void Gemm::set_candidate(const GemmShape& s, int candidate) {
  Plan& p = plan(s);
  if (candidate < 0 || candidate >= p.found) {
    fail("internal: GEMM candidate {} of {} for {} x {} by {} tokens", candidate, p.found, s.n, s.k,
         s.n_tokens);
  }
  p.chosen = candidate;
}

void Gemm::gemm_ex(const GemmShape& s, const uint16_t* w, const uint16_t* x, float* y) {
  const float alpha = 1.f, beta = 0.f;
  const int m_ = static_cast<int>(s.n), n_ = static_cast<int>(s.n_tokens),
            k_ = static_cast<int>(s.k);
  if (s.batch == 1) {
    SHARDLM_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, m_, n_, k_, &alpha, w,
                                      CUDA_R_16BF, k_, x, CUDA_R_16BF, k_, &beta, y, CUDA_R_32F, m_,
                                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  SHARDLM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle_, CUBLAS_OP_T, CUBLAS_OP_N, m_, n_, k_, &alpha, w, CUDA_R_16BF, k_, s.n * s.k, x,
      CUDA_R_16BF, k_, 0, &beta, y, CUDA_R_32F, m_, s.y_stride, s.batch, CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
}

void Gemm::bf16(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                float* y) {
  run(GemmShape{k, n, n_tokens}, w, x, y, path_);
}

void Gemm::bf16_into(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x,
                     int64_t n_tokens, float* y, int64_t ldy) {
  gemm_ex_to(w, k, n, x, n_tokens, y, CUDA_R_32F, ldy);
}

void Gemm::bf16_out(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                    uint16_t* y) {
  gemm_ex_to(w, k, n, x, n_tokens, y, CUDA_R_16BF, n);
}

void Gemm::bf16_add(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                    float* y) {
  gemm_ex_to(w, k, n, x, n_tokens, y, CUDA_R_32F, n, 1.f);
}

void Gemm::gemm_ex_to(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x,
                      int64_t n_tokens, void* y, cudaDataType_t y_type, int64_t ldy, float beta) {
  if (n_tokens == 0 || n == 0) return;
  const GemmShape s{k, n, n_tokens};
  check_int_sizes(s);
  const float alpha = 1.f;
  SHARDLM_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                                    static_cast<int>(n_tokens), static_cast<int>(k), &alpha, w,
                                    CUDA_R_16BF, static_cast<int>(k), x, CUDA_R_16BF,
                                    static_cast<int>(k), &beta, y, y_type, static_cast<int>(ldy),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void Gemm::run(const GemmShape& s, const uint16_t* w, const uint16_t* x, float* y, GemmPath path) {
  if (s.n_tokens == 0 || s.n == 0) return;
  check_int_sizes(s);
  const Plan* p = path == GemmPath::kLt ? &plan(s) : nullptr;
  if (!p || !p->ok) {
    gemm_ex(s, w, x, y);
    return;
  }
  const float alpha = 1.f, beta = 0.f;
  SHARDLM_CUBLAS_CHECK(cublasLtMatmul(lt_, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->c, y,
                                      p->c, &p->results[p->chosen].algo, workspace_,
                                      kWorkspaceBytes, stream_));
}

void* const* Gemm::upload_pointers(const std::vector<const void*>& ptrs) {
  // Grows after a sync (the last call's launch may still read the old arrays).
  grow_scratch(ptrs_, ptr_capacity_, ptrs.size(), stream_, "GEMM pointer arrays");
  // From pageable memory: staged before the call returns, so `ptrs` may go; the launch that uses
  // the copy follows it on the stream, and a later call's copy follows that launch.
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(ptrs_, ptrs.data(), ptrs.size() * sizeof(void*),
                                     cudaMemcpyHostToDevice, stream_));
  return ptrs_;
}

bool Gemm::bf16_grouped(const std::vector<GroupedGemm>& list) {
  if (list.empty()) return true;
  if (!grouped_ok_) return false;
  const size_t g = list.size();
  std::vector<cublasOperation_t> ta(g, CUBLAS_OP_T), tb(g, CUBLAS_OP_N);
  std::vector<int> m(g), n(g), k(g), one(g, 1);
  std::vector<float> alpha(g, 1.f), beta(g, 0.f);
  std::vector<const void*> ptrs(3 * g);  // A (weights), B (inputs), C (outputs)
  for (size_t i = 0; i < g; ++i) {
    const GroupedGemm& p = list[i];
    check_int_sizes(GemmShape{p.k, p.n, p.n_tokens});
    if (p.n == 0 || p.n_tokens == 0) fail("internal: an empty product in a grouped GEMM");
    m[i] = static_cast<int>(p.n);
    n[i] = static_cast<int>(p.n_tokens);
    k[i] = static_cast<int>(p.k);
    ptrs[i] = p.w;
    ptrs[g + i] = p.x;
    ptrs[2 * g + i] = p.y;
  }
  void* const* dev = upload_pointers(ptrs);
  const cublasStatus_t s = cublasGemmGroupedBatchedEx(
      handle_, ta.data(), tb.data(), m.data(), n.data(), k.data(), alpha.data(), dev, CUDA_R_16BF,
      k.data(), dev + g, CUDA_R_16BF, k.data(), beta.data(), dev + 2 * g, CUDA_R_16BF, m.data(),
      static_cast<int>(g), one.data(), CUBLAS_COMPUTE_32F);
  if (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE) {
    grouped_ok_ = false;
    spdlog::info(
        "cuBLAS does not run grouped BF16 GEMMs (status {}): the experts take one GEMM "
        "each",
        static_cast<int>(s));
    return false;
  }
  SHARDLM_CUBLAS_CHECK(s);
  return true;
}

void Gemm::bf16_batched_out(const uint16_t* const* w_table, bool w_k_by_n, int64_t k, int64_t n,
                            const uint16_t* x, int64_t ldx, int64_t n_tokens, uint16_t* y,
                            int64_t y_stride, int batch) {
  if (n_tokens == 0 || n == 0 || batch == 0) return;
  check_int_sizes(GemmShape{k, n, n_tokens});
  if (ldx > INT_MAX) fail("internal: a batched GEMM's input stride {} exceeds int", ldx);
  std::vector<const void*> ptrs(2 * static_cast<size_t>(batch));  // B (inputs), C (outputs)
  for (int b = 0; b < batch; ++b) {
    ptrs[static_cast<size_t>(b)] = x;
    ptrs[static_cast<size_t>(batch + b)] = y + b * y_stride;
  }
  void* const* dev = upload_pointers(ptrs);
  // Column-major: y_b^T (n x n_tokens) = op(W_b) x^T; W_b [n][k] row-major is k x n column-major
  // (used transposed), W_b [k][n] row-major is n x k column-major (used as it is).
  const float alpha = 1.f, beta = 0.f;
  const auto w_ld = static_cast<int>(w_k_by_n ? n : k);
  SHARDLM_CUBLAS_CHECK(
      cublasGemmBatchedEx(handle_, w_k_by_n ? CUBLAS_OP_N : CUBLAS_OP_T, CUBLAS_OP_N,
                          static_cast<int>(n), static_cast<int>(n_tokens), static_cast<int>(k),
                          &alpha, reinterpret_cast<const void* const*>(w_table), CUDA_R_16BF, w_ld,
                          dev, CUDA_R_16BF, static_cast<int>(ldx), &beta, dev + batch, CUDA_R_16BF,
                          static_cast<int>(n), batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace shardlm::cuda
