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
[ -x "$WORK/bin/shardlm" ] && [ "$WORK/bin/shardlm" -nt "$CARRY/bundle.tar.xz" ] ||
  tar -C "$WORK" -xJf "$CARRY/bundle.tar.xz"
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
