// An FP8 checkpoint's matrices as the loader binds them: each stays as the file holds it (its
// F8_E4M3 codes, memory-mapped) with its scales read once (per tensor, per channel or per block,
// as fp32, owned by the model), so loading copies nothing. A view of a matrix's rows (a tensor-
// parallel slice, an expert) keeps pointing at its rows' scales (TensorView::fp8_row0). Each rank
// then turns only the views it holds into BF16 as it prepares its weights
// (prepare_model_weights), or, where the backend runs FP8 matrices, keeps them FP8: FP8 rows
// (fp8_rows_of) for a dense model with per-tensor or per-channel scales on CUDA GPUs, alone or in
// a group; rows with a scale per 128 columns (fp8_groups_of) on the CPU, for every format whose
// blocks are whole groups of 128 columns. A few
// matrices are made BF16 as they are bound, because the binder reads them on the host: the
// embedding and output projection, and latent attention's kv_b_proj (its key rows are transposed
// at bind).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "model/fp8_checkpoint.h"

namespace shardlm {

// Whether the matrix of canonical name `name` is bound as BF16 even in an FP8 checkpoint (the
// binder reads it on the host): the embedding, the output projection and kv_b_proj.
bool fp8_bound_as_bf16(const std::string& name);

// Row-major BF16 of FP8 view w (its codes times their scales, rounded to nearest even; columns
// [c0, c0 + n) of each row): out[rows * n]. Large matrices are split over threads.
void dequantise_fp8_matrix(const TensorView& w, uint16_t* out);
void dequantise_fp8_columns(const TensorView& w, int64_t c0, int64_t n, uint16_t* out);

// w (fp8_scaled_by_rows, core/fp8.h) in core/fp8.h's row layout: its codes, then each row's scale;
// dst: fp8_matrix_bytes(w.numel(), w.rows()) bytes. False if w holds an E4M3 NaN code (0x7f,
// 0xff), which the CUDA tensor-core GEMV does not decode (the caller takes the BF16 copy instead,
// where the NaN stays a NaN); dst is then partly written.
bool fp8_rows_of(const TensorView& w, uint8_t* dst);

// w (fp8_groups_fit, core/fp8.h) in core/fp8.h's F8_E4M3_G128 layout: each row's codes, then the
// scale of each 128 of its columns; dst: row_bytes(F8_E4M3_G128, cols) * rows bytes. False, unless
// keep_nan, if w holds an E4M3 NaN code (0x7f, 0xff), which the CPU's FP8 kernels do not decode
// (the caller takes the BF16 copy instead, where the NaN stays a NaN); dst is then partly written.
bool fp8_groups_of(const TensorView& w, uint8_t* dst, bool keep_nan = false);

// Stands between the file's tensors and the binder (called with the canonical name the binder
// asks for): an F8_E4M3 tensor comes back with its scales attached (or as a BF16 copy for the
// names above); anything else as it is. An F8_E4M3 tensor without an FP8 quantization_config is
// an Error naming it; so is a missing or misshapen scale.
class Fp8BindView {
 public:
  Fp8BindView(const Fp8CheckpointConfig& q, FileTensorLookup find, Model& m);

  const TensorView* operator()(const std::string& name, const TensorView* t);
  size_t matrices() const { return views_.size(); }  // FP8 matrices bound so far

 private:
  const Fp8CheckpointConfig& q_;
  FileTensorLookup find_;
  Model& m_;
  std::map<const TensorView*, TensorView> views_;  // file tensor -> the view the binder gets
};

}  // namespace shardlm
