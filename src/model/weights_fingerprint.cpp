// weights_fingerprint: the layout hash over the tensors, the contents hash over the files (with
// the per-file cache).
#include "model/weights_fingerprint.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/model.h"

namespace shardlm {

namespace {

namespace fs = std::filesystem;

std::string hex(uint64_t h) { return fmt::format("{:016x}", h); }

// Hashes `size` bytes in chunks on several threads; the result is the hash of the chunk hashes
// (so it does not depend on the thread count, only on the chunk size).
uint64_t parallel_hash(const uint8_t* data, size_t size) {
  constexpr size_t kChunk = size_t{64} << 20;
  const size_t n = std::max<size_t>(1, (size + kChunk - 1) / kChunk);
  std::vector<uint64_t> parts(n);
  const size_t threads = std::min<size_t>(n, std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = t; i < n; i += threads) {
        const size_t begin = i * kChunk, len = std::min(kChunk, size - std::min(size, begin));
        parts[i] = XXH3_64bits(data + begin, len);
      }
    });
  }
  for (auto& th : pool) th.join();
  return XXH3_64bits(parts.data(), parts.size() * sizeof(uint64_t));
}

fs::path cache_dir() {
  if (const char* d = std::getenv("SHARDLM_CACHE_DIR"); d && *d) return fs::path(d) / "fingerprints";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    return fs::path(x) / "shardlm" / "fingerprints";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "shardlm" / "fingerprints";
}

struct FileKey {
  std::string path;  // absolute
  int64_t size = 0;
  int64_t mtime_ns = 0;
};

FileKey file_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("cannot read {} to fingerprint it", path);
  return {fs::absolute(path).lexically_normal().string(), static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

fs::path cache_entry(const FileKey& k) {
  return cache_dir() / (hex(XXH3_64bits(k.path.data(), k.path.size())) + ".json");
}

bool read_cached(const FileKey& k, std::string& hash) {
  std::ifstream in(cache_entry(k));
  if (!in) return false;
  try {
    const auto j = nlohmann::json::parse(in);
    if (j.at("path") != k.path || j.at("size") != k.size || j.at("mtime_ns") != k.mtime_ns) {
      return false;
    }
    hash = j.at("xxh3").get<std::string>();
    return hash.size() == 16;
  } catch (const std::exception&) {
    return false;  // a damaged entry is hashed again and rewritten
  }
}

void write_cached(const FileKey& k, const std::string& hash) {
  std::error_code ec;
  fs::create_directories(cache_dir(), ec);
  const fs::path entry = cache_entry(k), tmp = entry.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << nlohmann::json{{"path", k.path}, {"size", k.size}, {"mtime_ns", k.mtime_ns},
                          {"xxh3", hash}}
               .dump();
    if (!out) {
      spdlog::debug("could not write the fingerprint cache {}", tmp.string());
      return;
    }
  }
  fs::rename(tmp, entry, ec);  // atomic: ranks of one node may write the same entry at once
}

std::vector<std::string> weight_files(const Model& m) {
  std::vector<std::string> files;
  if (m.gguf) files.push_back(m.gguf->path());
  for (const auto& shard : m.shards) files.push_back(shard->path());
  return files;
}

}  // namespace

WeightsFingerprint WeightsFingerprint::parse(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return {text, ""};
  return {text.substr(0, slash), text.substr(slash + 1)};
}

std::string file_content_hash(const std::string& path, HashCache cache) {
  const FileKey key = file_key(path);
  std::string hash;
  if (cache == HashCache::use && read_cached(key, hash)) return hash;
  if (key.size > (int64_t{1} << 30)) {
    spdlog::info("fingerprinting {} ({:.1f} GiB; once per file, then cached)", path,
                 static_cast<double>(key.size) / (1 << 30));
  }
  const MappedFile file(path);
  hash = hex(parallel_hash(file.data(), file.size()));
  write_cached(key, hash);
  return hash;
}

WeightsFingerprint weights_fingerprint(const Model& model, HashCache cache) {
  std::string layout = model.config.summary() + "|" + model.format;
  model.for_each_matrix([&](const TensorView& t) {
    layout += fmt::format("|{}:{}:{}", t.name, dtype_name(t.dtype), t.shape_str());
  });
  WeightsFingerprint f;
  f.layout = hex(XXH3_64bits(layout.data(), layout.size()));
  const std::vector<std::string> files = weight_files(model);
  if (files.empty()) {
    f.contents = "dummy";
    return f;
  }
  std::string hashes;
  for (const std::string& file : files) hashes += file_content_hash(file, cache);
  f.contents = hex(XXH3_64bits(hashes.data(), hashes.size()));
  return f;
}

std::string fingerprint_difference(const std::string& a_text, const std::string& b_text) {
  const WeightsFingerprint a = WeightsFingerprint::parse(a_text), b = WeightsFingerprint::parse(b_text);
  if (a.layout != b.layout) {
    return fmt::format("the models differ (config or tensor names, types or shapes; layout hash "
                       "{} vs {})",
                       a.layout, b.layout);
  }
  if (a.contents != b.contents) {
    return fmt::format("the weight files hold different bytes in the same tensors (contents hash "
                       "{} vs {}): a damaged or different copy; compare the files, or run "
                       "`shardlm doctor --verify-weights` on each node",
                       a.contents, b.contents);
  }
  return {};
}

}  // namespace shardlm
