#!/usr/bin/env python3
"""TTFT of a disaggregated fleet on long prompts with the KV transfer overlapped with the chunked
prefill (the default) and without it (SHARDLM_KV_TRANSFER_OVERLAP=0 on the prefill worker: one
transfer after the whole prefill). Real etcd and nats-server, a prefill and a decode worker and
the frontend, as bench/fleet_disagg.py starts them; one request at a time, fresh prompts each
(no prefix-cache hits), TTFT measured by a streaming stdlib client, and the prefill worker's
exposed transfer time (from the end of the prefill's compute to the last part's acknowledgement,
/kv/stats exposed_seconds): what the overlap hides shows there even when the machine's load makes
TTFT noisy.
Usage:
  build/e2e-venv/bin/python bench/fleet_kv_overlap.py --binary build/shardlm \
      --model ~/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf --words 1200 --chunk 256
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_disagg as fd  # noqa: E402


def ttft(url, prompt):
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": 4, "temperature": 0,
                       "stream": True, "ignore_eos": True}).encode()
    req = urllib.request.Request(url + "/v1/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    start = time.monotonic()
    first = None
    try:
        r = urllib.request.urlopen(req, timeout=300)
    except urllib.error.HTTPError as e:
        sys.exit(f"HTTP {e.code}: {e.read().decode()}")
    with r:
        for line in r:
            if first is None and line.startswith(b"data: {"):
                first = time.monotonic() - start
    return first


def run(a, fleet, overlap, seed):
    os.environ["SHARDLM_KV_TRANSFER_OVERLAP"] = overlap
    p, purl = fd.worker(a, f"prefill{overlap}", fleet, "--is-prefill-worker",
                        "--max-num-batched-tokens", str(a.chunk))
    d, _ = fd.worker(a, f"decode{overlap}", fleet, "--disaggregation-mode", "decode")
    fe, furl = fd.frontend(a, fleet, 2)
    times = []
    for i in range(a.requests + 1):
        prompt = f"request {seed}-{i}: " + " ".join(f"w{seed}x{i}x{j}" for j in range(a.words))
        t = ttft(furl, prompt)
        if i:  # the first warms up
            times.append(t * 1000)
    with urllib.request.urlopen(purl + "/kv/stats") as r:
        kv = json.loads(r.read())
    fd.stop(fe, p, d)
    return times, kv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/shardlm")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--words", type=int, default=1200, help="words per prompt")
    ap.add_argument("--chunk", type=int, default=256, help="prefill --max-num-batched-tokens")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    out = {"1": [], "0": []}
    exposed = {"1": 0.0, "0": 0.0}  # ms per request, summed over the rounds
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fleet = fd.services(tmp)
            for r in range(a.rounds):  # alternate: the machine's load drifts
                for overlap in ("1", "0"):
                    times, kv = run(a, fleet, overlap, 10 * r + int(overlap))
                    out[overlap] += times
                    exposed[overlap] += kv["exposed_seconds"] / kv["transfers"] * 1000
                    print(f"round {r} overlap {overlap}: TTFT median {statistics.median(times):.1f}"
                          f" ms; {kv['transfers']} transfers in {kv['parts']} parts, "
                          f"{kv['bytes'] / 1e6:.1f} MB, {kv['transfer_seconds']:.3f} s sending, "
                          f"{kv['exposed_seconds'] / kv['transfers'] * 1000:.1f} ms per request "
                          f"after the prefill's end")
    finally:
        for proc in fd.PROCS:
            if proc.poll() is None:
                proc.kill()
    on, off = statistics.median(out["1"]), statistics.median(out["0"])
    print(f"TTFT median over {len(out['1'])} requests: overlapped {on:.1f} ms, after the prefill "
          f"{off:.1f} ms ({(on - off) / off * 100:+.1f}%)")
    print(f"transfer after the prefill's end, mean per request: overlapped "
          f"{exposed['1'] / a.rounds:.1f} ms, after the prefill {exposed['0'] / a.rounds:.1f} ms")


if __name__ == "__main__":
    main()
