// The identity of a model's weights, compared between the ranks of a group at start-up: a node
// whose files differ in a single byte must not join (it would answer with wrong text).
//
// Two parts, so a mismatch can say which kind it is:
//   layout    the config, every tensor's name, type and shape, in order
//   contents  a hash over the bytes of every weight file (GGUF or safetensors shards)
// Hashing hundreds of GiB takes as long as reading them once, so a file's hash is kept in a cache
// (one small JSON per file under $SHARDLM_CACHE_DIR/fingerprints, default
// ~/.cache/shardlm/fingerprints) keyed by its absolute path, size and modification time; a file
// that changes is hashed again. Dummy weights (--load-format dummy) have a layout only.
#pragma once

#include <string>

namespace shardlm {

struct Model;

struct WeightsFingerprint {
  std::string layout;    // 16 hex digits
  std::string contents;  // 16 hex digits; "dummy" for generated weights

  // "layout/contents", as carried in the handshake.
  std::string str() const { return layout + "/" + contents; }
  // Parses str(); a string without '/' is a layout with unknown contents.
  static WeightsFingerprint parse(const std::string& text);
};

enum class HashCache { use, refresh };  // refresh: hash every file again and rewrite the cache

WeightsFingerprint weights_fingerprint(const Model& model, HashCache cache = HashCache::use);

// Why two fingerprints differ, in words ("" when equal): the tensors themselves, or only the
// bytes inside them.
std::string fingerprint_difference(const std::string& a, const std::string& b);

// The XXH3-64 of a file's bytes as 16 hex digits, hashed in parallel chunks; uses and updates the
// cache as described above. Throws Error naming the path when it cannot be read.
std::string file_content_hash(const std::string& path, HashCache cache = HashCache::use);

}  // namespace shardlm
