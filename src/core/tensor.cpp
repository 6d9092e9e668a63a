// Formatting helpers for TensorView.
#include "core/tensor.h"

#include <fmt/format.h>

namespace shardlm {

std::string TensorView::shape_str() const {
  std::string s = "[";
  for (int i = 0; i < n_dims; ++i) s += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return s + "]";
}

}  // namespace shardlm
