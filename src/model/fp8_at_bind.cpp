// FP8 checkpoint matrices as they are bound, and their BF16 form.
#include "model/fp8_at_bind.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm {

namespace {

void dequantise_rows(const TensorView& w, int64_t c0, int64_t n, int64_t r0, int64_t r1,
                     uint16_t* out) {
  const float* lut = e4m3_values();
  const Fp8Scales& s = *w.fp8_scales;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* q = w.row(r);
    uint16_t* o = out + r * n;
    for (int64_t c = c0; c < c0 + n; ++c) {
      o[c - c0] = fp32_to_bf16(lut[q[c]] * s.at(w.fp8_row0 + r, w.fp8_col0 + c));
    }
  }
}

}  // namespace

bool fp8_bound_as_bf16(const std::string& name) {
  return name == "token_embd.weight" || name == "output.weight" ||
         name.find(".attn_kv_b.") != std::string::npos;
}

void dequantise_fp8_columns(const TensorView& w, int64_t c0, int64_t n, uint16_t* out) {
  const int64_t rows = w.rows();
  // About 4M codes per thread, at most one thread per core.
  const int64_t per_thread = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, n));
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int64_t parts = std::min(cores, (rows + per_thread - 1) / per_thread);
  if (parts <= 1) return dequantise_rows(w, c0, n, 0, rows, out);
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < parts; ++i) {
    threads.emplace_back(dequantise_rows, std::cref(w), c0, n, rows * i / parts,
                         rows * (i + 1) / parts, out);
  }
  for (auto& t : threads) t.join();
}

namespace {

bool holds_nan_code(const uint8_t* codes, int64_t n) {
  return std::any_of(codes, codes + n, [](uint8_t c) { return (c & 0x7f) == 0x7f; });
}

}  // namespace

bool fp8_rows_of(const TensorView& w, uint8_t* dst) {
  if (!fp8_scaled_by_rows(w)) {
    fail("internal: fp8_rows_of on '{}', which has no scale per row", w.name);
  }
  const auto k = static_cast<size_t>(w.ne[0]);
  for (int64_t r = 0; r < w.rows(); ++r) {
    uint8_t* row = dst + static_cast<size_t>(r) * k;
    std::memcpy(row, w.row(r), k);
    if (holds_nan_code(row, w.ne[0])) return false;
  }
  auto* scales = reinterpret_cast<float*>(dst + fp8_scales_offset(w.numel()));
  for (int64_t r = 0; r < w.rows(); ++r) {
    scales[r] = w.fp8_scales->at(w.fp8_row0 + r, w.fp8_col0);
  }
  return true;
}

bool fp8_groups_of(const TensorView& w, uint8_t* dst, bool keep_nan) {
  if (!fp8_groups_fit(w)) {
    fail("internal: fp8_groups_of on '{}', whose scales are not constant over 128 columns", w.name);
  }
  const int64_t k = w.ne[0], groups = (k + kFp8GroupCols - 1) / kFp8GroupCols;
  const size_t stride = row_bytes(DType::F8_E4M3_G128, k);
  for (int64_t r = 0; r < w.rows(); ++r) {
    uint8_t* row = dst + static_cast<size_t>(r) * stride;
    std::memcpy(row, w.row(r), static_cast<size_t>(k));
    if (!keep_nan && holds_nan_code(row, k)) return false;
    auto* scales = reinterpret_cast<float*>(row + k);
    for (int64_t g = 0; g < groups; ++g) {
      scales[g] = w.fp8_scales->at(w.fp8_row0 + r, w.fp8_col0 + g * kFp8GroupCols);
    }
  }
  return true;
}

void dequantise_fp8_matrix(const TensorView& w, uint16_t* out) {
  dequantise_fp8_columns(w, 0, w.ne[0], out);
}

Fp8BindView::Fp8BindView(const Fp8CheckpointConfig& q, FileTensorLookup find, Model& m)
    : q_(q), find_(std::move(find)), m_(m) {}

const TensorView* Fp8BindView::operator()(const std::string& name, const TensorView* t) {
  if (!t || t->dtype != DType::F8_E4M3) return t;
  if (!q_.present()) {
    fail(
        "'{}': tensor '{}' is F8_E4M3 but config.json has no FP8 quantization_config "
        "(quant_method fbgemm_fp8, compressed-tensors or fp8) to say how it is scaled",
        m_.path, t->name);
  }
  auto it = views_.find(t);
  if (it != views_.end()) return &it->second;
  TensorView v = *t;
  v.fp8_scales = &m_.fp8_scales.emplace_back(read_fp8_scales(*t, q_, find_, m_.path));
  check_input_scale(*t, find_, m_.path);
  if (fp8_bound_as_bf16(name)) {
    auto& buf = m_.generated.emplace_back(new uint16_t[static_cast<size_t>(t->numel())]);
    dequantise_fp8_matrix(v, buf.get());
    v.dtype = DType::BF16;
    v.data = buf.get();
    v.fp8_scales = nullptr;
  }
  return &views_.emplace(t, v).first->second;
}

}  // namespace shardlm
