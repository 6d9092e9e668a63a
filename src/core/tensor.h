// A non-owning view of a tensor: element type, shape and a pointer to its bytes (usually inside a
// memory-mapped model file). Shapes follow GGML order: ne[0] is the contiguous (row) dimension.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace shardlm {

struct Fp8Scales;  // core/fp8.h

// Where a buffer lives: host memory, or a device backend's memory (which the host cannot read).
enum class MemSpace : uint8_t { kHost, kDevice };

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};  // ne[0] = row length, ne[1] = rows, ...
  int n_dims = 1;
  const void* data = nullptr;
  MemSpace space = MemSpace::kHost;  // kDevice: a backend's copy (Backend::prepare_weights)
  // An FP8 checkpoint's matrix as the file holds it (F8_E4M3 codes, model/fp8_at_bind.h): its
  // scales, owned by the model, and the row and column of the file's matrix this view starts at
  // (a slice of its rows or columns keeps their scales). A slice of its columns is a window on
  // the file's rows, fp8_stride bytes apart (0: rows packed). Null for every other view; such a
  // view is prepared for its backend by prepare_model_weights.
  const Fp8Scales* fp8_scales = nullptr;
  int64_t fp8_row0 = 0;
  int64_t fp8_col0 = 0;
  size_t fp8_stride = 0;

  int64_t numel() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_size() const { return row_bytes(dtype, ne[0]); }
  size_t nbytes() const { return row_size() * static_cast<size_t>(rows()); }
  const uint8_t* row(int64_t i) const {
    return static_cast<const uint8_t*>(data) +
           static_cast<size_t>(i) * (fp8_stride ? fp8_stride : row_size());
  }
  std::string shape_str() const;
};

}  // namespace shardlm
