#!/usr/bin/env python3
"""TPOT with and without a grammar: the cost of structured output (issue 21).

Runs `shardlm serve` on a model, then streams `--batch` concurrent chat requests of
`--tokens` output tokens each, unconstrained (ignore_eos) and under a JSON schema (a list of at
least 64 strings, so the constrained answer runs to max_tokens too), and prints the median time
per output token of each and the ratio. TPOT of a request: (last token's arrival - first's) /
(completion_tokens - 1), completion_tokens from the usage chunk (chunks may carry several tokens).
Also the server's CPU time per output token (/proc/PID/stat), which a shared machine's load
disturbs far less than wall time. Usage:
  build/e2e-venv/bin/python bench/structured_output_tpot.py --binary build/shardlm \
      --model ~/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf --batch 1 --batch 32
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai

SCHEMA = {"type": "object", "properties": {
    "titles": {"type": "array", "items": {"type": "string"}, "minItems": 64}},
    "required": ["titles"]}


def start(binary, model, threads):
    log = open("/tmp/structured_output_tpot.log", "w+")
    proc = subprocess.Popen([binary, "serve", "--model", model, "--port", "0", "--threads",
                             str(threads), "--log-interval", "0", "--served-model-name", "m"], stdout=log,
                            stderr=subprocess.STDOUT)
    for _ in range(600):
        m = re.search(r"on http://127\.0\.0\.1:(\d+) ", open(log.name).read())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.1)
    proc.kill()
    sys.exit("the server did not start: " + open(log.name).read())


def tpot(client, constrained, tokens, i):
    extra = {"response_format": {"type": "json_schema",
                                 "json_schema": {"name": "t", "schema": SCHEMA}}} if constrained else {}
    first = last = None
    n = 0
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": f"Write a long list of titles {i}"}],
        max_tokens=tokens, temperature=0.8, seed=i, stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": not constrained, "min_p": 0.0}, **extra)
    for chunk in stream:
        if chunk.usage:
            n = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
    return ((last - first) / (n - 1) if n > 1 and first else float("nan")), n


def cpu_seconds(pid):
    """The server's user + system CPU time so far (/proc/PID/stat)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(client, pid, batch, constrained, tokens):
    """(median TPOT, mean completion tokens, server CPU ms per output token)."""
    cpu = cpu_seconds(pid)
    with ThreadPoolExecutor(batch) as pool:
        results = list(pool.map(lambda i: tpot(client, constrained, tokens, i), range(batch)))
    n = sum(r[1] for r in results)
    cpu_ms = (cpu_seconds(pid) - cpu) * 1e3 / max(n, 1)
    return statistics.median(r[0] for r in results), n / batch, cpu_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/shardlm")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--repeat", type=int, default=3,
                    help="free/constrained pairs per batch size, alternated; medians reported")
    a = ap.parse_args()
    proc, port = start(a.binary, a.model, a.threads)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        run(client, proc.pid, 2, True, 8)  # warm-up (and the schema's compile)
        for batch in a.batch or [1, 32]:
            free, constrained = [], []
            for _ in range(a.repeat):  # alternated, so load on a shared machine hits both alike
                free.append(run(client, proc.pid, batch, False, a.tokens))
                constrained.append(run(client, proc.pid, batch, True, a.tokens))
            med = lambda rows, k: statistics.median(r[k] for r in rows)
            print(json.dumps({"batch": batch, "tpot_ms_free": round(med(free, 0) * 1e3, 2),
                              "tpot_ms_json_schema": round(med(constrained, 0) * 1e3, 2),
                              "ratio": round(med(constrained, 0) / med(free, 0), 3),
                              "cpu_ms_per_token_free": round(med(free, 2), 2),
                              "cpu_ms_per_token_json": round(med(constrained, 2), 2),
                              "cpu_ratio": round(med(constrained, 2) / med(free, 2), 3),
                              "tokens_free": med(free, 1), "tokens_json": med(constrained, 1)}))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
