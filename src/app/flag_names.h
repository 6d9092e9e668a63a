// The names of serve's flags, with the spellings of the engines shardlm replaces (vLLM, SGLang,
// TensorRT-LLM's trtllm-serve, FastDeploy) as other names of the same flag, so that their launch
// commands run unchanged. One list, used by serve, and by doctor, which accepts serve's flags
// unused so that one command line runs both.
#pragma once

namespace shardlm::app::flag_names {

inline constexpr const char* kMaxModelLen = "--max-model-len,--context-length,--max_seq_len";
inline constexpr const char* kMaxNumSeqs = "--max-num-seqs,--max-running-requests,--max_batch_size";
inline constexpr const char* kMaxNumBatchedTokens = "--max-num-batched-tokens,--max_num_tokens";
inline constexpr const char* kNoPrefixCaching =
    "--no-prefix-caching,--disable-radix-cache,--no-enable-prefix-caching";
inline constexpr const char* kEnforceEager = "--enforce-eager,--disable-cuda-graph";
inline constexpr const char* kGpuMemoryUtilization =
    "--gpu-memory-utilization,--mem-fraction-static";
inline constexpr const char* kTrustRemoteCode = "--trust-remote-code,--trust_remote_code";

}  // namespace shardlm::app::flag_names
