// One prepare_weights call's device copies: matrices as BF16 [rows][ne[0]] (other types
// dequantised on the host with the CPU reference, then rounded), vectors as fp32. The views it
// returns point into memory this object owns; it frees all of it when the last PreparedWeights
// holding it goes. Nothing is looked up by host address after the upload: a new host buffer at a
// freed one's address gets its own copy from its own prepare_weights call.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/weight_set.h"

namespace shardlm::cuda {

class WeightStore {
 public:
  // `bytes` is the backend's running total of weight bytes on the device (added to here and
  // subtracted again when the store goes).
  explicit WeightStore(std::shared_ptr<std::atomic<int64_t>> bytes) : total_(std::move(bytes)) {}
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Uploads every entry of `set` and returns the device views, entry for entry; equal views, and
  // views of the first rows of another (same address, row length and type), share one copy.
  WeightSet upload(const WeightSet& set);
  size_t bytes() const { return bytes_; }

 private:
  // Dequantises (CPU reference) and rounds to BF16 on the host, in row chunks, then uploads; BF16
  // rows are uploaded as they are.
  uint16_t* upload_matrix(const TensorView& w);
  float* upload_vector(const float* host, int64_t n);
  void* allocate(size_t bytes);

  std::shared_ptr<std::atomic<int64_t>> total_;
  std::vector<void*> allocations_;
  size_t bytes_ = 0;
};

}  // namespace shardlm::cuda
