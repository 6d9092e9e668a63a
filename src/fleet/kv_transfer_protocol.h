// The KV transfer's wire format (disaggregated prefill/decode): one TCP connection per transfer,
// the prefill worker sends one kBlocks frame, the decode worker answers one kAck or kError frame.
// A frame is a fixed 32-byte header (little-endian: magic "SLKV", version, kind, request id,
// payload length) and its payload. A kBlocks payload is a u32 length, a JSON object (the layout,
// the prefix's token ids and block hashes) and the blocks' K/V bytes (engine/kv_block_transfer.h);
// kAck carries {"blocks": n} and kError a message. kProbe is `shardlm doctor`'s bandwidth probe:
// its payload (any bytes, up to kKvMaxProbeBytes) is read and dropped and answered with kAck
// {"bytes": n}. Anything else is refused with a log line.
// An overlapped transfer is several such connections for one request, each with the whole
// prefix's tokens and hashes so far but only the bytes of the blocks after the earlier parts'
// ("first" in the metadata; 0 when absent).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/kv_block_transfer.h"

namespace shardlm::fleet {

inline constexpr uint16_t kKvTransferVersion = 1;
inline constexpr size_t kKvFrameHeaderBytes = 32;
// The largest payload a decode worker reads (a bigger length is refused before any allocation).
inline constexpr uint64_t kKvMaxPayloadBytes = uint64_t(4) << 30;

inline constexpr uint64_t kKvMaxProbeBytes = uint64_t(1) << 30;

enum class KvFrameKind : uint16_t { kBlocks = 1, kAck = 2, kError = 3, kProbe = 4 };

struct KvFrameHeader {
  uint16_t version = kKvTransferVersion;
  KvFrameKind kind = KvFrameKind::kBlocks;
  uint64_t request_id = 0;
  uint64_t payload_bytes = 0;
};

std::string encode_header(const KvFrameHeader& h);
// The header of a frame, or nullopt with `why` (not a KV transfer frame, another version, an
// unknown kind, a payload over kKvMaxPayloadBytes).
std::optional<KvFrameHeader> decode_header(const std::string& bytes, std::string& why);

// A blocks payload is metadata_prefix(set) followed by set.bytes (sent as they are, uncopied).
std::string metadata_prefix(const KvBlockSet& set);
std::string encode_blocks(const KvBlockSet& set);  // the whole payload in one string
// Throws Error naming what is malformed. Takes the payload's bytes over.
KvBlockSet decode_blocks(std::string payload);

}  // namespace shardlm::fleet
