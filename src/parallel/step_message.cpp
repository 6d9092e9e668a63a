// Step message wire format: "SLMS", version, kind, then length-prefixed int32 arrays.
#include "parallel/step_message.h"

#include <cstring>

#include "core/error.h"

namespace shardlm::parallel {

namespace {

constexpr char kMagic[4] = {'S', 'L', 'M', 'S'};

class Writer {
 public:
  void u32(uint32_t v) { raw(&v, sizeof v); }
  void ints(const std::vector<int32_t>& v) {
    u32(static_cast<uint32_t>(v.size()));
    raw(v.data(), v.size() * sizeof(int32_t));
  }
  void raw(const void* p, size_t n) {
    const auto* c = static_cast<const char*>(p);
    out.insert(out.end(), c, c + n);
  }
  std::vector<char> out;
};

class Reader {
 public:
  explicit Reader(const std::vector<char>& b) : b_(b) {}
  uint32_t u32() {
    uint32_t v;
    raw(&v, sizeof v);
    return v;
  }
  std::vector<int32_t> ints() {
    const uint32_t n = u32();
    if (n > (b_.size() - pos_) / sizeof(int32_t)) fail("step message truncated (array of {})", n);
    std::vector<int32_t> v(n);
    raw(v.data(), n * sizeof(int32_t));
    return v;
  }
  void raw(void* p, size_t n) {
    if (n > b_.size() - pos_) fail("step message truncated at byte {}", pos_);
    std::memcpy(p, b_.data() + pos_, n);
    pos_ += n;
  }

 private:
  const std::vector<char>& b_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<char> encode_step(const StepMessage& m) {
  Writer w;
  w.raw(kMagic, 4);
  w.u32(StepMessage::kVersion);
  w.u32(static_cast<uint32_t>(m.kind));
  if (m.kind != StepKind::kForward) return w.out;
  const ForwardBatch& b = m.batch;
  w.ints(b.tokens);
  w.ints(b.positions);
  w.ints(b.slots);
  w.ints(b.logit_rows);
  w.u32(static_cast<uint32_t>(b.seqs.size()));
  for (const auto& s : b.seqs) {
    w.ints({s.first_row, s.n_tokens, s.n_past});
    w.ints(s.block_table);
  }
  return w.out;
}

StepMessage decode_step(const std::vector<char>& bytes) {
  Reader r(bytes);
  char magic[4];
  r.raw(magic, 4);
  if (std::memcmp(magic, kMagic, 4) != 0) fail("not a shardlm step message (bad magic)");
  const uint32_t version = r.u32();
  if (version != StepMessage::kVersion) {
    fail(
        "the master sends step messages of version {}, this rank speaks {}: run the same shardlm "
        "on every node",
        version, StepMessage::kVersion);
  }
  StepMessage m;
  m.kind = static_cast<StepKind>(r.u32());
  if (m.kind == StepKind::kHeartbeat || m.kind == StepKind::kShutdown) return m;
  if (m.kind != StepKind::kForward)
    fail("unknown step message kind {}", static_cast<uint32_t>(m.kind));
  ForwardBatch& b = m.batch;
  b.tokens = r.ints();
  b.positions = r.ints();
  b.slots = r.ints();
  b.logit_rows = r.ints();
  const uint32_t n_seqs = r.u32();
  if (b.positions.size() != b.tokens.size() || b.slots.size() != b.tokens.size() ||
      n_seqs > b.tokens.size()) {
    fail("inconsistent step message: {} tokens, {} positions, {} slots, {} sequences",
         b.tokens.size(), b.positions.size(), b.slots.size(), n_seqs);
  }
  for (uint32_t i = 0; i < n_seqs; ++i) {
    const auto head = r.ints();
    if (head.size() != 3) fail("inconsistent step message: sequence header of {}", head.size());
    ForwardBatch::Seq s{head[0], head[1], head[2], r.ints()};
    b.seqs.push_back(std::move(s));
  }
  for (int32_t row : b.logit_rows) {
    if (row < 0 || row >= static_cast<int32_t>(b.tokens.size()))
      fail("logit row {} out of range", row);
  }
  return m;
}

}  // namespace shardlm::parallel
