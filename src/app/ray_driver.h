// `shardlm serve --distributed-executor-backend ray`: hands this command line to the Python Ray
// executor (python/shardlm/ray_executor.py), which places the ranks on a running Ray cluster and
// starts each as a `shardlm serve` process on its node.
#pragma once

namespace shardlm::app {

// Replaces this process with `PYTHON -m shardlm.ray_executor --binary THIS_BINARY ARGS...`, where
// ARGS are this process's serve arguments less the executor flag. PYTHON: $SHARDLM_PYTHON, else
// python3. The package is found on PYTHONPATH, installed, or beside the binary (build/python, or
// the wheel's site-packages). Throws Error when the interpreter cannot be started.
[[noreturn]] void exec_ray_executor();

}  // namespace shardlm::app
