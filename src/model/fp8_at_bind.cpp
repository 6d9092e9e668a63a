// FP8 matrices dequantised to BF16 as the loader binds them.
#include "model/fp8_at_bind.h"

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm {

namespace {

void dequantise_rows(const TensorView& w, const Fp8Scales& s, int64_t r0, int64_t r1,
                     uint16_t* out) {
  const int64_t cols = w.ne[0];
  float lut[256];
  for (int c = 0; c < 256; ++c) lut[c] = e4m3_to_float(static_cast<uint8_t>(c));
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* q = w.row(r);
    uint16_t* o = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) o[c] = fp32_to_bf16(lut[q[c]] * s.at(r, c));
  }
}

}  // namespace

bool dequantised_at_bind(const Fp8CheckpointConfig& q, const ModelConfig& c) {
  return q.present() && (q.block_wise() || c.n_experts > 0 || c.is_mla());
}

void dequantise_fp8_matrix(const TensorView& w, const Fp8Scales& s, uint16_t* out) {
  const int64_t rows = w.rows();
  // About 4M codes per thread, at most one thread per core.
  const int64_t cols = std::max<int64_t>(1, w.ne[0]);
  const int64_t per_thread = std::max<int64_t>(1, (int64_t{1} << 22) / cols);
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int64_t n = std::min(cores, (rows + per_thread - 1) / per_thread);
  if (n <= 1) return dequantise_rows(w, s, 0, rows, out);
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < n; ++i) {
    threads.emplace_back(dequantise_rows, std::cref(w), std::cref(s), rows * i / n,
                         rows * (i + 1) / n, out);
  }
  for (auto& t : threads) t.join();
}

Fp8BindView::Fp8BindView(const Fp8CheckpointConfig& q, bool dequantise, FileTensorLookup find,
                         std::vector<std::unique_ptr<uint16_t[]>>& storage, std::string source)
    : q_(q),
      dequantise_(dequantise),
      find_(std::move(find)),
      storage_(storage),
      source_(std::move(source)) {}

const TensorView* Fp8BindView::operator()(const TensorView* t) {
  if (!t || t->dtype != DType::F8_E4M3) return t;
  if (!q_.present()) {
    fail(
        "'{}': tensor '{}' is F8_E4M3 but config.json has no FP8 quantization_config "
        "(quant_method fbgemm_fp8, compressed-tensors or fp8) to say how it is scaled",
        source_, t->name);
  }
  if (!dequantise_) return t;
  auto it = copies_.find(t);
  if (it != copies_.end()) return &it->second;
  const Fp8Scales s = read_fp8_scales(*t, q_, find_, source_);
  auto& buf = storage_.emplace_back(new uint16_t[static_cast<size_t>(t->numel())]);
  dequantise_fp8_matrix(*t, s, buf.get());
  TensorView copy = *t;
  copy.dtype = DType::BF16;
  copy.data = buf.get();
  bytes_ += static_cast<int64_t>(copy.nbytes());
  return &copies_.emplace(t, copy).first->second;
}

}  // namespace shardlm
