// KV transfer frames to and from bytes.
#include "fleet/kv_transfer_protocol.h"

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace shardlm::fleet {

namespace {

constexpr char kMagic[4] = {'S', 'L', 'K', 'V'};
constexpr uint32_t kMaxMetaBytes = 64u << 20;

template <typename T>
void put(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((uint64_t(v) >> (8 * i)) & 0xff));
}

template <typename T>
T get(const std::string& in, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(static_cast<uint8_t>(in[at + i])) << (8 * i);
  return static_cast<T>(v);
}

}  // namespace

std::string encode_header(const KvFrameHeader& h) {
  std::string out(kMagic, sizeof(kMagic));
  put<uint16_t>(out, h.version);
  put<uint16_t>(out, static_cast<uint16_t>(h.kind));
  put<uint64_t>(out, h.request_id);
  put<uint64_t>(out, h.payload_bytes);
  out.resize(kKvFrameHeaderBytes, '\0');  // reserved
  return out;
}

std::optional<KvFrameHeader> decode_header(const std::string& b, std::string& why) {
  if (b.size() != kKvFrameHeaderBytes || std::memcmp(b.data(), kMagic, sizeof(kMagic)) != 0) {
    why = "not a KV transfer frame (bad magic)";
    return std::nullopt;
  }
  KvFrameHeader h;
  h.version = get<uint16_t>(b, 4);
  const auto kind = get<uint16_t>(b, 6);
  h.request_id = get<uint64_t>(b, 8);
  h.payload_bytes = get<uint64_t>(b, 16);
  if (h.version != kKvTransferVersion) {
    why = fmt::format("KV transfer version {} (this worker speaks version {})", h.version,
                      kKvTransferVersion);
    return std::nullopt;
  }
  if (kind < 1 || kind > 4) {
    why = fmt::format("unknown frame kind {}", kind);
    return std::nullopt;
  }
  h.kind = static_cast<KvFrameKind>(kind);
  if (h.payload_bytes > kKvMaxPayloadBytes) {
    why = fmt::format("payload of {} bytes (at most {})", h.payload_bytes, kKvMaxPayloadBytes);
    return std::nullopt;
  }
  return h;
}

std::string metadata_prefix(const KvBlockSet& set) {
  const KvBlockLayout& l = set.layout;
  const nlohmann::json meta{{"n_layers", l.n_layers},     {"kv_dim", l.kv_dim},
                            {"block_size", l.block_size}, {"elem_bytes", l.elem_bytes},
                            {"values", l.values},         {"tokens", set.tokens},
                            {"hashes", set.hashes},       {"first", set.first}};
  const std::string text = meta.dump();
  std::string out;
  put<uint32_t>(out, static_cast<uint32_t>(text.size()));
  return out + text;
}

std::string encode_blocks(const KvBlockSet& set) {
  return metadata_prefix(set) + set.bytes;
}

KvBlockSet decode_blocks(std::string payload) {
  if (payload.size() < 4) fail("a blocks frame of {} bytes has no metadata", payload.size());
  const auto meta_bytes = get<uint32_t>(payload, 0);
  if (meta_bytes > kMaxMetaBytes || 4 + uint64_t(meta_bytes) > payload.size()) {
    fail("a blocks frame's metadata length {} does not fit its {} bytes", meta_bytes,
         payload.size());
  }
  const auto meta =
      nlohmann::json::parse(payload.begin() + 4, payload.begin() + 4 + meta_bytes, nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) fail("a blocks frame's metadata is not JSON");
  KvBlockSet set;
  try {
    KvBlockLayout& l = set.layout;
    l.n_layers = meta.at("n_layers").get<int>();
    l.kv_dim = meta.at("kv_dim").get<int64_t>();
    l.block_size = meta.at("block_size").get<int>();
    l.elem_bytes = meta.at("elem_bytes").get<int>();
    l.values = meta.at("values").get<bool>();
    set.tokens = meta.at("tokens").get<std::vector<int32_t>>();
    set.hashes = meta.at("hashes").get<std::vector<uint64_t>>();
    set.first = meta.value("first", size_t{0});
  } catch (const std::exception& e) {
    fail("a blocks frame's metadata is malformed: {}", e.what());
  }
  payload.erase(0, 4 + meta_bytes);  // a move of the bytes, no second buffer
  set.bytes = std::move(payload);
  return set;
}

}  // namespace shardlm::fleet
