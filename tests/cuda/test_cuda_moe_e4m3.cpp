// The FP8 experts' tensor-core tiles (moe_experts_e4m3.cu) against a double reference: the
// inputs' E4M3 codes and scales per row and 128 columns (moe_quantize_groups) equal the CPU
// codec's (fp8_reference.h) bit for bit, and each tiled pair's gate/up (SiLU) and down outputs
// equal the fp64 sums over the weights' and inputs' exact values e4m3(code) x scale within 1e-3
// (FP8 tensor cores add their products with fewer bits than fp32), for tiles of 1 to 16 pairs
// (one and two blocks of the mma's 8 columns), and output rows that are not a multiple of the
// mma's 16. A wrong layout, scale or pair costs 100%.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe_experts.cuh"
#include "cuda_test_util.h"
#include "fp8_reference.h"

namespace shardlm::testing {
namespace {

// Device memory for a test, freed with it.
struct DeviceBytes {
  explicit DeviceBytes(size_t n) { SHARDLM_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1))); }
  ~DeviceBytes() { cudaFree(p); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
  void* p = nullptr;
};

template <typename T>
std::unique_ptr<DeviceBytes> upload(const std::vector<T>& host) {
  auto d = std::make_unique<DeviceBytes>(host.size() * sizeof(T));
  SHARDLM_CUDA_CHECK(
      cudaMemcpy(d->p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <typename T>
std::vector<T> download(const void* dev, size_t n) {
  std::vector<T> host(n);
  SHARDLM_CUDA_CHECK(cudaDeviceSynchronize());
  SHARDLM_CUDA_CHECK(cudaMemcpy(host.data(), dev, n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

// An expert matrix in the device layout (expert_rows.cuh): codes [rows][k] (no NaN codes), then
// scales [rows][k / 128]; value(r, c) = e4m3(code) x scale.
struct Expert {
  std::vector<uint8_t> bytes;
  int64_t k, rows;
  double value(int64_t r, int64_t c) const {
    const auto* s = reinterpret_cast<const float*>(bytes.data() + rows * k);
    return double(e4m3_to_float(bytes[static_cast<size_t>(r * k + c)])) *
           s[r * (k / 128) + c / 128];
  }
};
Expert random_expert(int64_t k, int64_t rows, std::mt19937& rng) {
  Expert e{std::vector<uint8_t>(static_cast<size_t>(rows * k + rows * (k / 128) * 4)), k, rows};
  std::uniform_int_distribution<int> code(0, 255);
  for (int64_t i = 0; i < rows * k; ++i) {
    int b = code(rng);
    while ((b & 0x7f) == 0x7f) b = code(rng);
    e.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(b);
  }
  auto* s = reinterpret_cast<float*>(e.bytes.data() + rows * k);
  std::uniform_real_distribution<float> exponent(-12.f, -7.f);
  for (int64_t i = 0; i < rows * (k / 128); ++i) s[i] = std::exp2(exponent(rng));
  return e;
}

// The CPU's codes and scales of x [rows][k] per row and 128 columns, as moe_quantize_groups
// defines them.
void quantise_groups(const std::vector<float>& x, std::vector<uint8_t>& q, std::vector<float>& s) {
  const int64_t groups = static_cast<int64_t>(x.size()) / 128;
  q.resize(x.size());
  s.resize(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    float m = 0.f;
    for (int i = 0; i < 128; ++i) m = std::max(m, std::fabs(x[static_cast<size_t>(g * 128 + i)]));
    const float scale = m > 0.f ? m / 448.f : 1.f, inv = 1.f / scale;
    s[static_cast<size_t>(g)] = scale;
    for (int i = 0; i < 128; ++i) {
      const auto at = static_cast<size_t>(g * 128 + i);
      q[at] = float_to_e4m3(x[at] * inv);
    }
  }
}

// Device x [rows][k] quantised by moe_quantize_groups, checked against the CPU's; returns the codes
// and scales on the device.
std::pair<std::unique_ptr<DeviceBytes>, std::unique_ptr<DeviceBytes>> quantise_on_device(
    const std::vector<float>& x, int64_t rows, int64_t k, std::vector<uint8_t>& q,
    std::vector<float>& s, cudaStream_t stream) {
  auto dx = upload(x);
  auto dq = std::make_unique<DeviceBytes>(x.size());
  auto ds = std::make_unique<DeviceBytes>(x.size() / 128 * sizeof(float));
  cuda::moe_quantize_groups(dx->as<float>(), rows, k, dq->as<uint8_t>(), ds->as<float>(), stream);
  const auto got_q = download<uint8_t>(dq->p, x.size());
  const auto got_s = download<float>(ds->p, x.size() / 128);
  quantise_groups(x, q, s);
  for (size_t i = 0; i < q.size(); ++i) {
    if (got_q[i] != q[i]) {
      ADD_FAILURE() << "code " << i << ": " << int(got_q[i]) << " vs " << int(q[i]);
      break;
    }
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (got_s[i] != s[i]) {
      ADD_FAILURE() << "scale " << i << ": " << got_s[i] << " vs " << s[i];
      break;
    }
  }
  return {std::move(dq), std::move(ds)};
}

double quantised(const std::vector<uint8_t>& q, const std::vector<float>& s, size_t i) {
  return double(e4m3_to_float(q[i])) * s[i / 128];
}

TEST(CudaMoeE4m3, TilesMatchTheDoubleReferenceOfTheirQuantisedInputs) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const auto stream = static_cast<cudaStream_t>(be.stream());
  // d: gate/up's k and down's rows; f: gate/up's rows and down's k (200: gate/up only, rows not a
  // multiple of 16).
  for (const auto [d, f] : {std::pair<int64_t, int64_t>{256, 384}, {384, 128}, {256, 200}}) {
    SCOPED_TRACE(fmt::format("d {} f {}", d, f));
    const int E = 3, top_k = 2, tokens = 8;
    const int64_t pairs = tokens * top_k;
    std::vector<Expert> gate, up, down;
    for (int e = 0; e < E; ++e) {
      gate.push_back(random_expert(d, f, rng));
      up.push_back(random_expert(d, f, rng));
      if (f % 128 == 0) down.push_back(random_expert(f, d, rng));
    }
    // The pairs' order in `sorted` shuffled.
    std::vector<int32_t> sorted(static_cast<size_t>(pairs));
    for (int32_t p = 0; p < pairs; ++p) sorted[static_cast<size_t>(p)] = p;
    // pairs 2t and 2t + 1 are token t's: tiles take even pairs, then odd ones
    std::stable_partition(sorted.begin(), sorted.end(), [](int32_t p) { return p % 2 == 0; });
    const auto x = randn(static_cast<size_t>(tokens * d), rng);
    std::vector<uint8_t> xq;
    std::vector<float> xs;
    auto [dxq, dxs] = quantise_on_device(x, tokens, d, xq, xs, stream);
    // Device expert tables.
    std::vector<std::unique_ptr<DeviceBytes>> held;
    std::vector<const uint8_t*> ptrs;
    for (auto* list : {&gate, &up, &down}) {
      for (const Expert& m : *list)
        ptrs.push_back(held.emplace_back(upload(m.bytes))->as<uint8_t>());
    }
    auto table = upload(ptrs);
    const auto* base = table->as<const uint8_t*>();
    const cuda::MoeExpertTables t{base, base + E, base + 2 * E, true, f % 128 == 0};
    auto dsorted = upload(sorted);
    // Tiles of up to 8 pairs (one block of mma columns): 1, 7, 3 and 5 pairs; of up to 16 (two):
    // 3 and 13.
    const std::vector<std::pair<int, std::vector<cuda::MoeTile>>> layouts = {
        {8, {{1, 0, 1}, {0, 1, 7}, {2, 8, 3}, {1, 11, 5}}}, {16, {{1, 0, 3}, {0, 3, 13}}}};
    for (const auto& [tile_tokens, tiles] : layouts) {
      SCOPED_TRACE(fmt::format("tiles of up to {} pairs", tile_tokens));
      std::vector<int> expert_of(static_cast<size_t>(pairs));
      for (const auto& t : tiles)
        for (int i = 0; i < t.count; ++i)
          expert_of[static_cast<size_t>(sorted[t.start + i])] = t.expert;
      auto dtiles = upload(tiles);
      auto dn = upload(std::vector<int32_t>{static_cast<int32_t>(tiles.size())});
      DeviceBytes hidden(static_cast<size_t>(pairs * f) * sizeof(float));
      cuda::moe_gate_up_e4m3(t, dtiles->as<cuda::MoeTile>(), dn->as<int32_t>(), 6,
                             dsorted->as<int32_t>(), dxq->as<uint8_t>(), dxs->as<float>(), top_k, d,
                             f, hidden.as<float>(), tile_tokens, stream);
      const auto h = download<float>(hidden.p, static_cast<size_t>(pairs * f));
      std::vector<double> want(h.size());
      for (int64_t p = 0; p < pairs; ++p) {
        const Expert &g = gate[static_cast<size_t>(expert_of[p])],
                     &u = up[static_cast<size_t>(expert_of[p])];
        const int64_t tok = p / top_k;
        for (int64_t j = 0; j < f; ++j) {
          double a = 0, b = 0;
          for (int64_t c = 0; c < d; ++c) {
            const double xv = quantised(xq, xs, static_cast<size_t>(tok * d + c));
            a += g.value(j, c) * xv;
            b += u.value(j, c) * xv;
          }
          want[static_cast<size_t>(p * f + j)] = a / (1 + std::exp(-a)) * b;
        }
      }
      EXPECT_LT(rel_err(h, want), 1e-3) << "gate/up";
      if (f % 128 != 0) continue;
      std::vector<uint8_t> hq;
      std::vector<float> hs;
      auto [dhq, dhs] = quantise_on_device(h, pairs, f, hq, hs, stream);
      DeviceBytes ys(static_cast<size_t>(pairs * d) * sizeof(float));
      cuda::moe_down_e4m3(t, dtiles->as<cuda::MoeTile>(), dn->as<int32_t>(), 6,
                          dsorted->as<int32_t>(), dhq->as<uint8_t>(), dhs->as<float>(), f, d,
                          ys.as<float>(), tile_tokens, stream);
      const auto y = download<float>(ys.p, static_cast<size_t>(pairs * d));
      std::vector<double> want_y(y.size());
      for (int64_t p = 0; p < pairs; ++p) {
        const Expert& w = down[static_cast<size_t>(expert_of[p])];
        for (int64_t j = 0; j < d; ++j) {
          double a = 0;
          for (int64_t c = 0; c < f; ++c)
            a += w.value(j, c) * quantised(hq, hs, static_cast<size_t>(p * f + c));
          want_y[static_cast<size_t>(p * d + j)] = a;
        }
      }
      EXPECT_LT(rel_err(y, want_y), 1e-3) << "down";
    }
  }
}

}  // namespace
}  // namespace shardlm::testing
