# Sourced by the scripts that run ON the GPU machine (scripts/device_*.sh): unpacks the bundle
# scripts/device_bundle.sh made here and defines the logging helpers.
#   RESULTS: what comes back ($OUT of the device tool); WORK: scratch; LOGS: one log per step,
#   packed into $RESULTS/logs.tar.gz by finish_logs; SUMMARY: $RESULTS/summary.txt.
RESULTS="${OUT:-/tmp/shardlm-device-out}"
CARRY="${SHARDLM_DEVCARRY:-.devcarry}"
WORK=/tmp/shardlm-dev
LOGS="$WORK/logs"
mkdir -p "$RESULTS" "$WORK" "$LOGS"
SUMMARY="$RESULTS/summary.txt"
: >"$SUMMARY"
# A call that carries no bundle uses the one a call before unpacked (the machine kept warm).
[ -f "$CARRY/bundle.tar.xz" ] && tar -C "$WORK" -xJf "$CARRY/bundle.tar.xz"
export LD_LIBRARY_PATH="$WORK/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
BIN="$WORK/bin"

note() { echo "$*" | tee -a "$SUMMARY"; }
step() {  # step NAME TIMEOUT CMD...: runs CMD with its output in $LOGS/NAME.log
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  note "$(printf '%-22s rc=%-3s %4ss' "$name" "$rc" "$((SECONDS - t0))")"
  return $rc
}
finish_logs() { tar -C "$LOGS" -czf "$RESULTS/logs.tar.gz" . && note "done"; }

# machine_info: nvidia-smi and any library the binaries miss into $LOGS/machine.log; the GPU's
# name into the summary.
machine_info() {
  {
    nvidia-smi
    ldd "$BIN"/* | grep -E "not found" || echo "all libraries found"
  } >"$LOGS/machine.log" 2>&1
  grep -m1 -E "H200|H100" "$LOGS/machine.log" | tee -a "$SUMMARY"
}

# cuda_tests LIMIT FILTER LINES [PATTERN]: the CUDA test binary (gtest FILTER) on the carried model
# slice within LIMIT seconds; notes up to LINES lines of results (and of PATTERN's lines, if given).
cuda_tests() {
  local slice
  slice=$(ls "$CARRY"/smollm2-*layers.gguf 2>/dev/null | head -1)
  # No slice carried: the variable stays unset and the tests that need the default model skip.
  local model=(env -u SHARDLM_PARITY_MODEL)
  [ -n "$slice" ] && model=(env SHARDLM_PARITY_MODEL="$slice")
  SHARDLM_TEST_DATA_DIR="$PWD/tests/data" step cuda_tests "$1" "${model[@]}" \
    "$BIN/shardlm_cuda_tests" --gtest_filter="$2"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|^\[       OK \]|tests ran|Failure|rel_err|Expected|Which is${4:+|$4}" \
    "$LOGS/cuda_tests.log" | head -"$3" | tee -a "$SUMMARY"
}

# measure_streams NAME PORT: 1,000 prompt tokens in and 1,000 out per stream against the server on
# PORT, the independent client (scripts/http_bench_client.py) at each of $STREAMS (default 64 256)
# and `shardlm bench serve` beside it where $BENCH names the concurrency; a line each in the summary.
measure_streams() {
  local name=$1 port=$2 n
  for n in ${STREAMS-64 256}; do
    step "client-$name-$n" "${LIMIT:-200}" python3 scripts/http_bench_client.py --port "$port" \
      --streams "$n" --input-tokens 1000 --max-tokens 1000
    note "$name client $n: $(tail -1 "$LOGS/client-$name-$n.log")"
    if [[ " ${BENCH:-} " == *" $n "* ]]; then
      step "bench-$name-$n" "${LIMIT:-200}" "$BIN/shardlm" bench serve \
        --base-url "http://127.0.0.1:$port" --input-len 1000 --output-len 1000 --num-prompts "$n" \
        --max-concurrency "$n" --warmup 0 --no-progress
      note "$name bench $n: $(grep -E 'Successful requests|Output token throughput|Median TTFT|Median TPOT' \
        "$LOGS/bench-$name-$n.log" | tr -s ' ' | tr '\n' ' ')"
    fi
  done
}

# memcheck_serve MODEL PORT: compute-sanitizer memcheck over a short serving run on CUDA (a
# completion and a streamed chat through the API, then SIGTERM); notes the error summary.
memcheck_serve() {
  local M=$1 PORT=$2
  command -v compute-sanitizer >/dev/null || { note "memcheck: no compute-sanitizer"; return; }
  compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/shardlm" serve -m "$M" --device cuda \
    --port "$PORT" --kv-cache-memory 1GiB >"$LOGS/memcheck_serve.log" 2>&1 &
  SERVER=$!
  PORT="$PORT" python3 - >"$LOGS/memcheck_client.log" 2>&1 <<'PY'
import json, os, time, urllib.request
PORT = os.environ["PORT"]
def post(path, body):
    req = urllib.request.Request("http://127.0.0.1:" + PORT + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=300).read().decode()
for _ in range(600):
    try:
        urllib.request.urlopen("http://127.0.0.1:" + PORT + "/health", timeout=1)
        break
    except Exception:
        time.sleep(0.5)
print(post("/v1/completions", {"prompt": "The capital of France is", "max_tokens": 12, "temperature": 0}))
print(post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Say hi"}],
                                    "max_tokens": 8, "stream": True})[-200:])
PY
  note "memcheck client rc=$?: $(tail -c 200 "$LOGS/memcheck_client.log")"
  pkill -TERM -x shardlm  # the server under the sanitizer: it drains and exits 0
  wait "$SERVER"
  note "memcheck serve rc=$? $(grep -E 'ERROR SUMMARY' "$LOGS/memcheck_serve.log")"
}
