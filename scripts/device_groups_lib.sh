# Sourced by the group checks that run ON the GPU machine (device_group_check.sh,
# device_nccl_check.sh): the prompts, a greedy completion with its log-probabilities, the
# comparison of two layouts' outputs, and starting a layout. Needs B (the shardlm binary), WORK,
# RESULTS and S (the summary file) set.
PROMPTS=("The capital of France is" "Write one sentence about the sea:" "1, 2, 3, 4," "def add(a, b):")

complete() {  # port prompt -> one JSON line: the greedy text of 32 tokens and their logprobs
  curl -s "http://127.0.0.1:$1/v1/completions" -H 'Content-Type: application/json' \
    -d "{\"prompt\": \"$2\", \"max_tokens\": 32, \"temperature\": 0, \"ignore_eos\": true, \"logprobs\": 1}" |
    python3 -c 'import json,sys; c=json.load(sys.stdin)["choices"][0]; print(json.dumps([c["text"], c["logprobs"]["token_logprobs"]]))'
}
compare() {  # reference layout -> "N of M greedy texts equal; max |logprob difference| D"; rc 1 if not all equal
  python3 - "$WORK/$1.txt" "$WORK/$2.txt" <<'PY'
import json, sys
try:
    a = [json.loads(l) for l in open(sys.argv[1])]
    b = [json.loads(l) for l in open(sys.argv[2])]
except (ValueError, OSError) as e:
    print(f"no comparable output ({e})"); sys.exit(1)
same = sum(x[0] == y[0] for x, y in zip(a, b))
diff = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x[1], y[1]))
print(f"{same} of {len(a)} greedy texts equal; max |logprob difference| {diff:.2e}")
sys.exit(0 if same == len(a) == len(b) and diff == 0 else 1)
PY
}
wait_up() {  # port
  for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.5; done
  return 1
}
run_layout() {  # name port model args...: starts the group (one supervising process), runs prompts
  local name=$1 port=$2 model=$3
  shift 3
  "$B" serve -m "$model" --device cuda --port "$port" --log-interval 0 --kv-cache-memory 256MiB "$@" \
    >"$RESULTS/$name.log" 2>&1 &
  local pid=$!
  if wait_up "$port"; then
    for p in "${PROMPTS[@]}"; do complete "$port" "$p"; done >"$WORK/$name.txt"
  else
    echo "did not start" >"$WORK/$name.txt"
  fi
  kill -TERM $pid
  wait $pid
  echo "$name exit $?" >>"$S"
}
