#!/usr/bin/env python3
"""TPOT with and without a grammar: the cost of structured output (issue 21).

Runs `shardlm serve` on a model, then streams `--batch` concurrent chat requests of
`--tokens` output tokens each, unconstrained and under a JSON schema (a list of strings, which
keeps a model writing), and prints the median time per output token of
each and the ratio. Usage:
  build/e2e-venv/bin/python bench/structured_output_tpot.py --binary build/shardlm \
      --model ~/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf --batch 1 --batch 32
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai

SCHEMA = {"type": "object", "properties": {
    "titles": {"type": "array", "items": {"type": "string"}}}, "required": ["titles"]}


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
    times = []
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": f"Write a long title {i}"}],
        max_tokens=tokens, temperature=0.8, seed=i, stream=True,
        extra_body={"ignore_eos": not constrained, "min_p": 0.0}, **extra)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            times.append(time.perf_counter())
    gaps = [b - a for a, b in zip(times, times[1:])]
    return statistics.mean(gaps) if gaps else float("nan"), len(times)


def run(client, batch, constrained, tokens):
    with ThreadPoolExecutor(batch) as pool:
        results = list(pool.map(lambda i: tpot(client, constrained, tokens, i), range(batch)))
    return statistics.median(r[0] for r in results), statistics.mean(r[1] for r in results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/shardlm")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, action="append")
    a = ap.parse_args()
    proc, port = start(a.binary, a.model, a.threads)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        run(client, 2, True, 8)  # warm-up (and the schema's compile)
        for batch in a.batch or [1, 32]:
            free, n_free = run(client, batch, False, a.tokens)
            json_, n_json = run(client, batch, True, a.tokens)
            print(json.dumps({"batch": batch, "tpot_ms_free": round(free * 1e3, 2),
                              "tpot_ms_json_schema": round(json_ * 1e3, 2),
                              "ratio": round(json_ / free, 3),
                              "chunks_free": n_free, "chunks_json": n_json}))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
