// The tensor-core prefill attention (backend/cuda/attention_prefill.cu) against the CPU reference
// (cpu::attention) on fresh random BF16 keys/values and fp32 queries, by normalised error: fresh
// prompts and chunks after a cached prefix (chunked prefill), lengths on and off the 64-row and
// 64-key tiles, GQA groups of 1, 4 and 8, head_dim 64 and 128, block sizes 16, 32 and 5, a sliding
// window, and mixed batches (prefill chunks beside decode rows, sequences sharing blocks); through
// the backend's attention op, the kernel called directly, and for mixed batches the dispatcher on
// the batch packed decode rows first (the decode rows then go to the split-K kernel), with the
// output poisoned first so that an unwritten row fails.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "backend/cuda/attention_prefill.cuh"
#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

// The kernel rounds the queries and the softmax weights to BF16 for the tensor cores (keys and
// values are BF16 already): about 3e-3 of normalised error on these inputs; a wrong key, mask or
// tile shows as an error of order 1.
constexpr double kTolerance = 1e-2;

struct Chunk {
  int n_tokens, n_past;  // query rows and the keys cached before them
};

struct PrefillShape {
  int n_heads, n_kv_heads, head_dim, block_size, window;
  std::vector<Chunk> chunks;
};

struct PrefillCase {
  AttentionParams p;
  int64_t pool_tokens = 0;
  int n_rows = 0;
  std::vector<float> k, v;       // [pool_tokens][kv_dim], BF16-rounded
  std::vector<uint16_t> kb, vb;  // the same as BF16 bits
  std::vector<std::vector<int32_t>> tables;
  std::vector<AttentionSeq> seqs;
  std::vector<float> q;  // [n_rows][n_heads * head_dim]
};

// A paged pool of random BF16 keys and values; each sequence's table draws random blocks of it
// (blocks shared between sequences, as a prefix cache shares them).
PrefillCase make_case(const PrefillShape& sh, std::mt19937& rng) {
  PrefillCase c;
  c.p = {sh.n_heads,    sh.n_kv_heads, sh.head_dim,
         sh.block_size, sh.window,     1.f / std::sqrt(static_cast<float>(sh.head_dim))};
  int longest = 0;
  for (const Chunk& ch : sh.chunks) longest = std::max(longest, ch.n_tokens + ch.n_past);
  const int64_t n_blocks = (longest + sh.block_size - 1) / sh.block_size + 7;
  c.pool_tokens = n_blocks * sh.block_size;
  const int64_t kv_dim = int64_t{sh.n_kv_heads} * sh.head_dim;
  const size_t pool = static_cast<size_t>(c.pool_tokens * kv_dim);
  c.k = bf16_rounded(randn(pool, rng));
  c.v = bf16_rounded(randn(pool, rng));
  for (auto [from, to] : {std::pair{&c.k, &c.kb}, std::pair{&c.v, &c.vb}}) {
    to->resize(pool);
    for (size_t i = 0; i < pool; ++i) (*to)[i] = fp32_to_bf16((*from)[i]);
  }
  for (const Chunk& ch : sh.chunks) {
    std::vector<int32_t>& t =
        c.tables.emplace_back((ch.n_tokens + ch.n_past + sh.block_size - 1) / sh.block_size);
    for (int32_t& b : t) b = static_cast<int32_t>(rng() % n_blocks);
  }
  for (size_t i = 0; i < sh.chunks.size(); ++i) {
    c.seqs.push_back({c.n_rows, sh.chunks[i].n_tokens, sh.chunks[i].n_past, c.tables[i].data()});
    c.n_rows += sh.chunks[i].n_tokens;
  }
  c.q = randn(static_cast<size_t>(c.n_rows) * sh.n_heads * sh.head_dim, rng);
  return c;
}

std::vector<float> cpu_reference(const PrefillCase& c) {
  CpuBackendOptions o = small_cpu_options(c.p.head_dim);
  o.max_context = c.pool_tokens + 1;
  o.max_batch_tokens = c.n_rows;
  CpuBackend cpu(o);
  std::vector<float> k = c.k, v = c.v, out(c.q.size());
  const StepInput in = attention_step(c.seqs, c.p.block_size);
  cpu.attention(c.q.data(), KvLayerView{k.data(), v.data()}, begin_step(cpu, in).seqs, c.p,
                out.data());
  return out;
}

// The batch as the kernel reads it, built here (not through the backend's uploads); with
// single_rows_first, packed as the backend packs it: the one-row sequences first
// (n_single_row_seqs of them), then the rest, each part in the batch's order.
cuda::AttentionBatch device_batch(cuda::CudaBackend& be, const PrefillCase& c,
                                  bool single_rows_first = false) {
  std::vector<int32_t> seqs, tables, rows(static_cast<size_t>(c.n_rows), -1);
  cuda::AttentionBatch b;
  std::vector<size_t> order;
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    if (!single_rows_first || c.seqs[i].n_tokens == 1) order.push_back(i);
  }
  if (single_rows_first) b.n_single_row_seqs = static_cast<int>(order.size());
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    if (single_rows_first && c.seqs[i].n_tokens != 1) order.push_back(i);
  }
  for (size_t at = 0; at < order.size(); ++at) {
    const size_t i = order[at];
    const AttentionSeq& s = c.seqs[i];
    seqs.insert(seqs.end(),
                {s.first_row, s.n_tokens, s.n_past, static_cast<int32_t>(tables.size())});
    tables.insert(tables.end(), c.tables[i].begin(), c.tables[i].end());
    for (int r = 0; r < s.n_tokens; ++r) rows[static_cast<size_t>(s.first_row + r)] = int32_t(at);
    b.max_keys = std::max(b.max_keys, s.n_past + s.n_tokens);
    b.max_seq_rows = std::max(b.max_seq_rows, s.n_tokens);
  }
  b.seqs = ints_to_device<cuda::DeviceAttnSeq>(be, seqs);
  b.tables = ints_to_device<int32_t>(be, tables);
  b.row_seq = ints_to_device<int32_t>(be, rows);
  b.n_rows = c.n_rows;
  b.n_seqs = static_cast<int>(c.seqs.size());
  return b;
}

std::string describe(const PrefillShape& sh) {
  std::string chunks;
  for (const Chunk& ch : sh.chunks) chunks += fmt::format(" {}+{}", ch.n_past, ch.n_tokens);
  return fmt::format("heads {}/{}, head_dim {}, block {}, window {}, past+rows:{}", sh.n_heads,
                     sh.n_kv_heads, sh.head_dim, sh.block_size, sh.window, chunks);
}

float* poisoned(cuda::CudaBackend& be, size_t n) {
  return to_device(be, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

// A batch of decode rows and prefill chunks through attention() as the backend packs it: the
// decode rows on the split-K kernel, the chunks on the tensor-core kernel.
void check_split(cuda::CudaBackend& be, const PrefillCase& c, const float* dq,
                 const KvLayerView& kv, const std::vector<float>& ref) {
  const cuda::AttentionBatch b = device_batch(be, c, true);
  if (b.n_single_row_seqs == 0 || b.n_single_row_seqs == b.n_seqs) return;
  ASSERT_TRUE(cuda::mixed_attention_split_applies(b, c.p));
  float* scratch = be.alloc_floats(cuda::attention_scratch_floats(b, c.p));
  float* out = poisoned(be, c.q.size());
  cuda::attention(dq, reinterpret_cast<const uint16_t*>(kv.k),
                  reinterpret_cast<const uint16_t*>(kv.v), b, c.p, scratch, out,
                  static_cast<cudaStream_t>(be.stream()));
  const double err = rel_err(to_host(be, out, ref.size()), ref);
  EXPECT_LT(err, kTolerance) << "split";
  fmt::print("  {} decode rows apart: rel_err {:.2e}\n", b.n_single_row_seqs, err);
}

void check_shape(const PrefillShape& sh, std::mt19937& rng) {
  SCOPED_TRACE(describe(sh));
  const PrefillCase c = make_case(sh, rng);
  const std::vector<float> ref = cpu_reference(c);
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_context = c.pool_tokens;
  o.max_batch_tokens = std::max(64, c.n_rows);
  cuda::CudaBackend be(o);
  const KvLayerView kv = device_kv(bits_to_device(be, c.kb), bits_to_device(be, c.vb));
  const float* dq = to_device(be, c.q);

  float* out = poisoned(be, c.q.size());
  const StepInput in = attention_step(c.seqs, c.p.block_size);
  be.attention(dq, kv, begin_step(be, in).seqs, c.p, out);
  const double err = rel_err(to_host(be, out, ref.size()), ref);
  EXPECT_LT(err, kTolerance) << "backend";
  EXPECT_GT(err, 0.0) << "bit-equal to the fp32 reference: not the BF16 tensor-core kernel?";

  const cuda::AttentionBatch b = device_batch(be, c);
  ASSERT_TRUE(cuda::prefill_attention_applies(b, c.p));
  float* scratch = be.alloc_floats(cuda::prefill_attention_scratch_floats(b));
  float* out2 = poisoned(be, c.q.size());
  cuda::prefill_attention(dq, reinterpret_cast<const uint16_t*>(kv.k),
                          reinterpret_cast<const uint16_t*>(kv.v), b, c.p, scratch, out2,
                          static_cast<cudaStream_t>(be.stream()));
  const double err2 = rel_err(to_host(be, out2, ref.size()), ref);
  EXPECT_LT(err2, kTolerance) << "kernel";
  fmt::print("  {}: rel_err backend {:.2e}, kernel {:.2e}\n", describe(sh), err, err2);
  check_split(be, c, dq, kv, ref);
}

TEST(CudaPrefillAttention, FreshPromptsEveryGroup) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  for (int group : {1, 4, 8}) {
    for (int n : {2, 63, 64, 65, 700}) check_shape({2 * group, 2, 128, 16, 0, {{n, 0}}}, rng);
  }
  check_shape({32, 8, 128, 16, 0, {{1030, 0}}}, rng);  // Llama-3.1-8B's attention
}

TEST(CudaPrefillAttention, ChunksAfterACachedPrefix) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  for (int group : {1, 4, 8}) {
    check_shape({2 * group, 2, 128, 16, 0, {{300, 777}}}, rng);
    check_shape({2 * group, 2, 128, 16, 0, {{64, 64}}}, rng);
    check_shape({2 * group, 2, 128, 16, 0, {{5, 1}}}, rng);
  }
  check_shape({8, 2, 128, 16, 0, {{512, 2048}, {512, 0}, {100, 1500}}}, rng);
}

TEST(CudaPrefillAttention, HeadDimsBlockSizesAndWindow) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  check_shape({8, 2, 64, 32, 0, {{200, 100}}}, rng);
  check_shape({6, 2, 64, 5, 0, {{77, 0}, {130, 41}}}, rng);  // a block size of no power of two
  check_shape({8, 2, 128, 16, 100, {{300, 0}, {90, 500}}}, rng);
  check_shape({8, 8, 64, 16, 7, {{150, 20}}}, rng);
}

// Chunks beside decode rows (one query row after a long context), as the scheduler mixes them.
TEST(CudaPrefillAttention, MixedBatchWithDecodeRows) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  std::vector<Chunk> mixed;
  for (int i = 0; i < 40; ++i) mixed.push_back({1, 1 + static_cast<int>(rng() % 1500)});
  mixed.push_back({256, 300});
  for (int i = 0; i < 24; ++i) mixed.push_back({1, 1 + static_cast<int>(rng() % 1500)});
  mixed.push_back({33, 0});
  check_shape({32, 8, 128, 16, 0, mixed}, rng);
  check_shape({8, 2, 64, 16, 50, mixed}, rng);
  // Chunks first and between the decode rows, a decode row at context 1, 255 decode rows (the
  // decode kernel's one-split plan) beside a 2,048-row chunk.
  check_shape({8, 2, 128, 16, 0, {{40, 0}, {1, 0}, {1, 900}, {7, 3}, {1, 4100}, {1, 17}}}, rng);
  std::vector<Chunk> wide = {{2048, 0}};
  for (int i = 0; i < 255; ++i) wide.push_back({1, 1 + static_cast<int>(rng() % 2000)});
  check_shape({32, 8, 128, 16, 0, wide}, rng);
}

}  // namespace
}  // namespace shardlm::testing
