// The split-K decode attention (backend/cuda/attention_decode.cu) against the CPU reference
// (cpu::attention) on fresh random BF16 keys and values and fp32 queries, by normalised error:
// contexts of 1 to 8,200 keys, GQA groups of 1, 4 and 8, head_dim 64/128/256, block sizes 16, 32
// and 5, a sliding window, batches of 1 and 64 (sequences of mixed lengths sharing scattered
// blocks), through the backend (its split heuristic) and with the split count forced (one split,
// the most, and an odd count), and inside a CUDA graph captured at one set of lengths and replayed
// at others. Both kernels: the CUDA-core one (fp32 math) and the tensor-core one (BF16 queries and
// weights), each with forced splits; the backend's plan takes the tensor cores at head_dim 64/128.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/attention_decode.cuh"
#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

// fp32 math on the same BF16 values: a wrong key, weight or split shows as an error of order 1,
// rounding (exp2 with a pre-scaled query, other summation orders) as about 1e-6.
constexpr double kTolerance = 1e-5;
// The tensor-core kernel rounds the queries and the softmax weights to BF16: against a reference
// given the same BF16 queries what is left is the weights' rounding (2^-9 each, about 1e-3 of the
// output); one wrong key among 8,200 is still about 2e-2.
constexpr double kTensorCoreTolerance = 4e-3;

struct DecodeShape {
  int n_heads, n_kv_heads, head_dim, block_size, window;
  std::vector<int> contexts;  // keys each sequence sees (its one query row included)
};

// A paged pool with random BF16 contents, the sequences' block tables (random blocks of the pool,
// shared between sequences as a prefix cache would) and their queries.
struct DecodeCase {
  AttentionParams p;
  int64_t pool_tokens = 0;
  std::vector<float> k, v;       // [pool_tokens][kv_dim], BF16-rounded
  std::vector<uint16_t> kb, vb;  // the same as BF16 bits
  std::vector<std::vector<int32_t>> tables;
  std::vector<AttentionSeq> seqs;
  std::vector<float> q;  // [n_seqs][n_heads * head_dim]
};

float uniform(uint32_t& s) {  // xorshift32 in [-1, 1)
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return static_cast<float>(s >> 8) * (2.f / 16777216.f) - 1.f;
}

DecodeCase make_case(const DecodeShape& sh, std::mt19937& rng) {
  DecodeCase c;
  c.p = {sh.n_heads,    sh.n_kv_heads, sh.head_dim,
         sh.block_size, sh.window,     1.f / std::sqrt(static_cast<float>(sh.head_dim))};
  const int longest = *std::max_element(sh.contexts.begin(), sh.contexts.end());
  const int64_t n_blocks = (longest + sh.block_size - 1) / sh.block_size + 7;
  c.pool_tokens = n_blocks * sh.block_size;
  const int64_t kv_dim = int64_t{sh.n_kv_heads} * sh.head_dim;
  const size_t pool = static_cast<size_t>(c.pool_tokens * kv_dim);
  uint32_t s = rng() | 1u;
  for (auto* bits : {&c.kb, &c.vb}) {
    bits->resize(pool);
    for (uint16_t& b : *bits) b = fp32_to_bf16(2.f * uniform(s));
  }
  c.k.resize(pool);
  c.v.resize(pool);
  for (size_t i = 0; i < pool; ++i) {
    c.k[i] = bf16_to_fp32(c.kb[i]);
    c.v[i] = bf16_to_fp32(c.vb[i]);
  }
  for (int ctx : sh.contexts) {
    std::vector<int32_t>& t = c.tables.emplace_back((ctx + sh.block_size - 1) / sh.block_size);
    for (int32_t& b : t) b = static_cast<int32_t>(rng() % n_blocks);
  }
  for (size_t i = 0; i < sh.contexts.size(); ++i)
    c.seqs.push_back({static_cast<int32_t>(i), 1, sh.contexts[i] - 1, c.tables[i].data()});
  c.q = randn(sh.contexts.size() * static_cast<size_t>(sh.n_heads * sh.head_dim), rng);
  return c;
}

// The CPU's attention on the case; with bf16_queries, on its queries rounded to BF16 (what the
// tensor-core kernel multiplies).
std::vector<float> cpu_reference(const DecodeCase& c, bool bf16_queries = false) {
  CpuBackendOptions o = small_cpu_options(c.p.head_dim);
  o.max_context = c.pool_tokens + 1;
  o.max_batch_tokens = static_cast<int64_t>(c.seqs.size());
  CpuBackend cpu(o);
  std::vector<float> k = c.k, v = c.v, q = c.q, out(c.q.size());
  if (bf16_queries) {
    for (float& x : q) x = bf16_to_fp32(fp32_to_bf16(x));
  }
  const StepInput in = attention_step(c.seqs, c.p.block_size);
  cpu.attention(q.data(), KvLayerView{k.data(), v.data()}, begin_step(cpu, in).seqs, c.p,
                out.data());
  return out;
}

// The reference and tolerance for a kernel.
struct Expected {
  std::vector<float> ref;
  double tolerance;
};
Expected expected(const DecodeCase& c, bool tensor_cores) {
  return tensor_cores ? Expected{cpu_reference(c, true), kTensorCoreTolerance}
                      : Expected{cpu_reference(c), kTolerance};
}

// The batch as the kernel reads it, built here (the backend's step upload is not used).
cuda::AttentionBatch device_batch(cuda::CudaBackend& be, const DecodeCase& c) {
  std::vector<int32_t> seqs, tables, rows;
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    const AttentionSeq& s = c.seqs[i];
    seqs.insert(seqs.end(),
                {s.first_row, s.n_tokens, s.n_past, static_cast<int32_t>(tables.size())});
    tables.insert(tables.end(), c.tables[i].begin(), c.tables[i].end());
    rows.push_back(static_cast<int32_t>(i));
  }
  cuda::AttentionBatch b;
  b.seqs = ints_to_device<cuda::DeviceAttnSeq>(be, seqs);
  b.tables = ints_to_device<int32_t>(be, tables);
  b.row_seq = ints_to_device<int32_t>(be, rows);
  b.n_rows = b.n_seqs = static_cast<int>(c.seqs.size());
  b.one_row_per_seq = true;
  for (const AttentionSeq& s : c.seqs) b.max_keys = std::max(b.max_keys, s.n_past + 1);
  return b;
}

std::string describe(const DecodeShape& sh) {
  const int lo = *std::min_element(sh.contexts.begin(), sh.contexts.end());
  const int hi = *std::max_element(sh.contexts.begin(), sh.contexts.end());
  return fmt::format("{} seqs, contexts {}..{}, heads {}/{}, head_dim {}, block {}, window {}",
                     sh.contexts.size(), lo, hi, sh.n_heads, sh.n_kv_heads, sh.head_dim,
                     sh.block_size, sh.window);
}

// The backend's attention op (its heuristic) and both kernels with forced splits, against the CPU.
void check_shape(const DecodeShape& sh, std::mt19937& rng) {
  SCOPED_TRACE(describe(sh));
  const DecodeCase c = make_case(sh, rng);
  const Expected exact = expected(c, false), rounded = expected(c, true);
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_context = c.pool_tokens;
  o.max_batch_tokens = std::max<int64_t>(64, static_cast<int64_t>(c.seqs.size()));
  cuda::CudaBackend be(o);
  const KvLayerView kv = device_kv(bits_to_device(be, c.kb), bits_to_device(be, c.vb));
  const float* dq = to_device(be, c.q);
  float* out = be.alloc_floats(c.q.size());
  const StepInput in = attention_step(c.seqs, c.p.block_size);
  be.attention(dq, kv, begin_step(be, in).seqs, c.p, out);
  const bool planned_tc =
      cuda::decode_attention_splits(static_cast<int>(c.seqs.size()), c.p).tensor_cores;
  const Expected& backend = planned_tc ? rounded : exact;
  EXPECT_LT(rel_err(to_host(be, out, backend.ref.size()), backend.ref), backend.tolerance)
      << "backend, tensor cores " << planned_tc;

  const cuda::AttentionBatch b = device_batch(be, c);
  ASSERT_TRUE(cuda::decode_attention_applies(b, c.p));
  const bool tc_applies = cuda::decode_mma_applies(c.p.head_dim, c.p.n_heads / c.p.n_kv_heads);
  EXPECT_EQ(planned_tc, tc_applies);  // the default plan takes the tensor cores where they apply
  const auto stream = static_cast<cudaStream_t>(be.stream());
  const cuda::DecodeSplits forced[] = {{1, 64}, {64, 1}, {13, 64}, {3, 16}};
  for (cuda::DecodeSplits sp : forced) {
    for (bool tc : {false, true}) {
      if (tc && !tc_applies) continue;
      sp.tensor_cores = tc;
      SCOPED_TRACE(::testing::Message() << "splits " << sp.n_splits << " min keys "
                                        << sp.min_split_keys << " tensor cores " << tc);
      const size_t n = cuda::decode_attention_scratch_floats(b.n_seqs, c.p, sp.n_splits);
      float* scratch = be.alloc_floats(std::max<size_t>(n, 1));
      float* out2 = be.alloc_floats(c.q.size());
      cuda::decode_attention(dq, reinterpret_cast<const uint16_t*>(kv.k),
                             reinterpret_cast<const uint16_t*>(kv.v), b, c.p, sp, scratch, out2,
                             stream);
      const Expected& e = tc ? rounded : exact;
      EXPECT_LT(rel_err(to_host(be, out2, e.ref.size()), e.ref), e.tolerance);
    }
  }
}

TEST(CudaDecodeAttention, OneSequenceEveryContextAndGroup) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  for (int ctx : {1, 17, 256, 1000, 4100}) {
    for (int group : {1, 4, 8}) check_shape({2 * group, 2, 128, 16, 0, {ctx}}, rng);
  }
  check_shape({32, 8, 128, 16, 0, {8200}}, rng);  // Llama-3.1-8B's attention
}

TEST(CudaDecodeAttention, HeadDimsBlockSizesAndWindow) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  check_shape({8, 2, 64, 32, 0, {1000}}, rng);
  check_shape({8, 2, 256, 32, 0, {1000}}, rng);
  check_shape({4, 2, 128, 5, 0, {300, 1, 77}}, rng);  // a block size of no power of two
  check_shape({6, 2, 128, 16, 0, {700}}, rng);        // 3 query heads per KV head (padded to 4)
  check_shape({8, 2, 128, 16, 100, {1000, 50, 4100}}, rng);
}

TEST(CudaDecodeAttention, BatchOf64MixedLengths) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  std::vector<int> mixed;
  for (int i = 0; i < 64; ++i) mixed.push_back(std::vector<int>{1, 17, 256, 1000, 4100}[i % 5]);
  check_shape({8, 2, 128, 16, 0, mixed}, rng);
  std::vector<int> spread;
  for (int i = 0; i < 64; ++i) spread.push_back(1 + static_cast<int>(rng() % 2048));
  check_shape({32, 8, 128, 16, 0, spread}, rng);
  check_shape({16, 16, 128, 16, 0, spread}, rng);  // enough (sequence, head) pairs: one split
}

// A decode step captured as a CUDA graph at one set of lengths and replayed at others: the split
// plan is frozen in the graph, the split of each sequence's keys is not.
TEST(CudaDecodeAttention, GraphReplayedAtOtherLengths) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  const DecodeShape captured{8, 2, 128, 16, 0, {4100, 4100, 4100, 4100}};
  DecodeCase c = make_case(captured, rng);
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_context = c.pool_tokens;
  cuda::CudaBackend be(o);
  const KvLayerView kv = device_kv(bits_to_device(be, c.kb), bits_to_device(be, c.vb));
  const float* dq = to_device(be, c.q);
  float* out = be.alloc_floats(c.q.size());
  const int owner = 0;
  const GraphKey key{&owner, 4, 0, 4};
  StepIndices ix;
  ix.seqs = c.seqs.data();
  ix.n_seqs = 4;
  ix.block_size = c.p.block_size;
  const bool tc = cuda::decode_attention_splits(4, c.p).tensor_cores;
  for (int step = 0; step < 2; ++step) {  // the first sighting runs op by op, the second captures
    const StepArrays step_arrays = be.begin_step(ix);
    const bool capturing = be.graph_capture_begin(key);
    be.attention(dq, kv, step_arrays.seqs, c.p, out);
    if (capturing) {
      be.graph_capture_end(key);
      ASSERT_TRUE(be.graph_replay(key));
    }
    const Expected e = expected(c, tc);
    EXPECT_LT(rel_err(to_host(be, out, c.q.size()), e.ref), e.tolerance) << step;
  }
  for (const std::vector<int>& lengths :
       std::vector<std::vector<int>>{{1, 17, 2999, 300}, {4000, 64, 65, 1000}}) {
    SCOPED_TRACE(::testing::Message() << "replay at " << lengths[0] << ", " << lengths[1] << ", "
                                      << lengths[2] << ", " << lengths[3]);
    for (int i = 0; i < 4; ++i) {  // the same tables (long enough), other positions
      c.seqs[static_cast<size_t>(i)].n_past = lengths[static_cast<size_t>(i)] - 1;
    }
    be.begin_step(ix);
    ASSERT_TRUE(be.graph_replay(key));
    const Expected e = expected(c, tc);
    EXPECT_LT(rel_err(to_host(be, out, c.q.size()), e.ref), e.tolerance);
  }
}

}  // namespace
}  // namespace shardlm::testing
