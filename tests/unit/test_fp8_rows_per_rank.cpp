// An FP8 checkpoint's matrices as each rank prepares them (prepare_model_weights): where the
// backend runs FP8 rows (Backend::runs_fp8_rows, the CUDA backend with --quantization fp8) a matrix
// with a scale per row (per tensor or per channel) comes as FP8 rows with the checkpoint's own
// codes and scales, alone and on every rank of a tensor-parallel group, its Megatron column cuts
// (O, down) included; one with block scales comes as BF16. The values are those the CPU runs (the
// same views dequantised to BF16), and a column cut holds the full matrix's columns. Where the
// backend takes routed experts as FP8 groups (Backend::runs_fp8_group_expert, the CUDA backend),
// a mixture of experts' experts come so, on every rank of an expert- or tensor-parallel group, and
// its other matrices as BF16.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/fp16.h"
#include "core/fp8.h"
#include "model/model.h"
#include "model/weight_set_of.h"
#include "parallel/tp_shard.h"
#include "test_support.h"
#include "tiny_fp8_model.h"

namespace shardlm::testing {
namespace {

CpuBackendOptions one_thread() {
  CpuBackendOptions o;
  o.threads = 1;
  return o;
}

// The CPU backend answering as the CUDA backend with --quantization fp8 does.
class Fp8RowsBackend : public CpuBackend {
 public:
  Fp8RowsBackend() : CpuBackend(one_thread()) {}
  bool runs_fp8_rows() const override { return true; }
  bool runs_fp8_groups() const override { return false; }
};

// Element (r, c) of a prepared matrix as the BF16 bits the CPU runs: a BF16 view's own, an FP8
// row view's code times its row's scale, rounded as dequantise_fp8_matrix rounds, and so an FP8
// groups view's (the CPU's own form).
uint16_t bf16_at(const TensorView& w, int64_t r, int64_t c) {
  if (w.dtype == DType::BF16) return reinterpret_cast<const uint16_t*>(w.row(r))[c];
  if (w.dtype == DType::F8_E4M3_G128) {
    std::vector<float> row(static_cast<size_t>(w.ne[0]));
    fp8_group_row_to_float(w.row(r), w.ne[0], row.data());
    return fp32_to_bf16(row[static_cast<size_t>(c)]);
  }
  EXPECT_EQ(w.dtype, DType::F8_E4M3);
  return fp32_to_bf16(e4m3_to_float(w.row(r)[c]) * fp8_row_scales(w)[r]);
}

std::vector<const TensorView*> linears(const LayerWeights& l) {
  return {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down};
}

// How many elements of a and b differ (their shapes equal).
int64_t differences(const TensorView& a, const TensorView& b, int64_t b_col0 = 0) {
  int64_t n = 0;
  for (int64_t r = 0; r < a.rows(); ++r) {
    for (int64_t c = 0; c < a.ne[0]; ++c) n += bf16_at(a, r, c) != bf16_at(b, r, b_col0 + c);
  }
  return n;
}

// Every linear matrix of `fp8` (prepared by a backend that runs FP8 rows) against `ref` (the same
// views prepared by the CPU, which keeps them in its FP8 groups form or, where that does not fit,
// BF16): the same values, FP8 rows where the format has a scale per row, or (`cuts`) where a
// Megatron column cut of O or down lies inside one block's columns. Returns how many came as FP8
// rows.
int expect_same_values(const ModelWeights& fp8, const ModelWeights& ref, bool rows,
                       bool cuts = false) {
  int kept = 0;
  for (size_t i = 0; i < fp8.layers.size(); ++i) {
    const auto a = linears(fp8.layers[i]), b = linears(ref.layers[i]);
    for (size_t m = 0; m < a.size(); ++m) {
      SCOPED_TRACE("layer " + std::to_string(i) + " matrix " + std::to_string(m));
      EXPECT_TRUE(b[m]->dtype == DType::BF16 || b[m]->dtype == DType::F8_E4M3_G128);
      if (a[m]->dtype == DType::F8_E4M3) ++kept;
      const bool cut = cuts && (a[m] == &fp8.layers[i].wo || a[m] == &fp8.layers[i].w_down);
      EXPECT_TRUE(a[m]->dtype == DType::BF16 || rows || cut);
      EXPECT_EQ(a[m]->ne, b[m]->ne);
      if (a[m]->ne == b[m]->ne) EXPECT_EQ(differences(*a[m], *b[m]), 0);
    }
  }
  return kept;
}

// Columns [c0, c0 + cut.ne[0]) of `full` equal the column cut.
void expect_columns(const TensorView& cut, const TensorView& full, int64_t c0) {
  ASSERT_EQ(cut.rows(), full.rows());
  EXPECT_EQ(differences(cut, full, c0), 0);
}

TEST(Fp8RowsPerRank, EachRankTakesItsRowsAndColumnsWithTheirScales) {
  const TinyModelSpec spec;
  for (Fp8Format f : all_fp8_formats()) {
    SCOPED_TRACE(fp8_format_name(f));
    const bool rows = !fp8_block_wise(f);
    TempDir dir("fp8-rows-" + fp8_format_name(f));
    write_tiny_fp8_hf_model(dir.path("m"), spec, f);
    auto full = load_model(dir.path("m"));
    CpuBackend cpu(one_thread());
    Fp8RowsBackend fp8;
    const BackendWeights full_ref = prepare_model_weights(cpu, full->config, full->weights);
    const BackendWeights full_fp8 = prepare_model_weights(fp8, full->config, full->weights);
    const int alone = expect_same_values(full_fp8.weights, full_ref.weights, rows);
    EXPECT_EQ(alone > 0, rows);
    if (rows) {  // the checkpoint's own scales, one per row (one repeated for a per-tensor scale)
      const TensorView& wq = full_fp8.weights.layers[0].wq;
      const float* s = fp8_row_scales(wq);
      EXPECT_GT(s[0], 0.f);
      if (f == Fp8Format::kCompressedTensor || f == Fp8Format::kFp8Tensor) {
        EXPECT_EQ(s[0], s[wq.rows() - 1]);
      }
    }
    for (bool megatron : {false, true}) {
      for (int rank = 0; rank < 2; ++rank) {
        SCOPED_TRACE("tp 2 rank " + std::to_string(rank) + (megatron ? " megatron" : " exact"));
        auto shard = parallel::shard_model(*full, rank, 2, false, megatron);
        const BackendWeights ref = prepare_model_weights(cpu, shard->config, shard->weights);
        const BackendWeights got = prepare_model_weights(fp8, shard->config, shard->weights);
        if (!megatron || rows) {
          EXPECT_EQ(expect_same_values(got.weights, ref.weights, rows), alone);
        } else {  // some of the tiny model's O and down cuts lie inside one of its 48-wide blocks
          int inside = 0;
          for (const LayerWeights& l : shard->weights.layers) {
            inside += fp8_scaled_by_rows(l.wo) + fp8_scaled_by_rows(l.w_down);
          }
          EXPECT_GT(inside + rank, 0);  // rank 0's O columns [0, 32) do
          EXPECT_EQ(expect_same_values(got.weights, ref.weights, rows, true), inside);
        }
        if (!megatron) continue;
        // Row-parallel O and down: this rank's heads' and FFN rows' input columns.
        for (size_t i = 0; i < got.weights.layers.size(); ++i) {
          const LayerWeights &g = got.weights.layers[i], &w = full_ref.weights.layers[i];
          expect_columns(g.wo, w.wo, rank * w.wo.ne[0] / 2);
          expect_columns(g.w_down, w.w_down, rank * w.w_down.ne[0] / 2);
        }
      }
    }
  }
}

// The CPU backend answering as the CUDA backend does: no FP8 rows or groups but for routed experts
// whose rows are a multiple of 128 wide.
class Fp8ExpertsBackend : public CpuBackend {
 public:
  Fp8ExpertsBackend() : CpuBackend(one_thread()) {}
  bool runs_fp8_groups() const override { return false; }
  bool runs_fp8_group_expert(const TensorView& w) const override { return w.ne[0] % 128 == 0; }
};

TEST(Fp8RowsPerRank, RoutedExpertsComeAsFp8GroupsOnEveryRank) {
  TinyModelSpec spec = tiny_moe_spec("qwen3_moe");
  spec.n_layers = 3;
  spec.dense_layers = {0};
  spec.d_model = 128;
  spec.moe_ffn = 256;  // a rank's gate/up rows at TP=2: 128
  TempDir dir("fp8-experts");
  write_tiny_fp8_hf_model(dir.path("m"), spec, Fp8Format::kFbgemm);
  auto full = load_model(dir.path("m"));
  setenv("SHARDLM_CPU_FP8_GROUPS", "0", 1);  // the reference: every matrix a BF16 copy
  CpuBackend cpu(one_thread());
  Fp8ExpertsBackend gpu;
  // Alone, TP=2 as a device backend runs it (each expert's gate/up and down rows cut) and EP=2
  // (whole experts per rank).
  for (const auto& [tp, rank, ep] :
       {std::tuple{1, 0, false}, {2, 0, false}, {2, 1, false}, {2, 0, true}, {2, 1, true}}) {
    SCOPED_TRACE(fmt::format("tp {} rank {}{}", tp, rank, ep ? " ep" : ""));
    auto model = tp == 1 ? nullptr : parallel::shard_model(*full, rank, tp, ep);
    const Model& m = model ? *model : *full;
    const BackendWeights ref = prepare_model_weights(cpu, m.config, m.weights);
    const BackendWeights got = prepare_model_weights(gpu, m.config, m.weights);
    for (size_t i = 0; i < got.weights.layers.size(); ++i) {
      const MoeFfnWeights &g = got.weights.layers[i].moe, &r = ref.weights.layers[i].moe;
      EXPECT_EQ(g.gate.empty(), i == 0);
      for (const auto [gl, rl] :
           {std::pair{&g.gate, &r.gate}, {&g.up, &r.up}, {&g.down, &r.down}}) {
        ASSERT_EQ(gl->size(), rl->size());
        for (size_t e = 0; e < gl->size(); ++e) {
          EXPECT_EQ((*gl)[e].dtype, DType::F8_E4M3_G128) << "layer " << i << " expert " << e;
          EXPECT_EQ((*rl)[e].dtype, DType::BF16);
          EXPECT_EQ(differences((*gl)[e], (*rl)[e]), 0) << "layer " << i << " expert " << e;
        }
      }
      for (const TensorView* w : linears(got.weights.layers[i])) {
        if (w->data) EXPECT_EQ(w->dtype, DType::BF16);
      }
    }
  }
  unsetenv("SHARDLM_CPU_FP8_GROUPS");
}

}  // namespace
}  // namespace shardlm::testing
