#!/usr/bin/env python3
"""Disaggregated vs aggregated serving, the frontend's overhead, and the KV transfer's bandwidth
(issue 20), on one machine with real etcd and nats-server processes.

Starts etcd and NATS on free ports and, in turn:
  direct      one aggregated worker, measured directly (`shardlm bench serve` against it)
  frontend    the same worker registered in etcd, measured through `shardlm frontend`
  disagg      a prefill worker and a decode worker behind the frontend
and prints each run's TTFT and TPOT (medians, p99) from bench serve's JSON report, the frontend's
TPOT overhead against direct, the prefill worker's KV transfer bandwidth (bytes sent / seconds from
connect to acknowledgement, from its /kv/stats) against the link's raw bandwidth as `shardlm doctor`
measures it (probes to the decode worker's KV port), and raw loopback TCP (one Python socket, 1 GiB).
Usage:
  build/e2e-venv/bin/python bench/fleet_disagg.py --binary build/shardlm \
      --model ~/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf --num-prompts 64 \
      --input-len 512 --output-len 64 --max-concurrency 4
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_log(log, pattern, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, open(log).read())
        if m:
            return m
        time.sleep(0.1)
    sys.exit(f"{what} did not start:\n" + open(log).read()[-3000:])


def spawn(args, name):
    log = f"/tmp/fleet_disagg-{name}-{os.getpid()}.log"
    proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    PROCS.append(proc)
    return proc, log


def services(tmp):
    port, peer, nats = free_port(), free_port(), free_port()
    ep = f"127.0.0.1:{port}"
    spawn([shutil.which("etcd") or "/usr/bin/etcd", "--data-dir", f"{tmp}/etcd",
           "--listen-client-urls", f"http://{ep}", "--advertise-client-urls", f"http://{ep}",
           "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
           f"http://127.0.0.1:{peer}", "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
          "etcd")
    spawn([shutil.which("nats-server") or "/usr/sbin/nats-server", "-a", "127.0.0.1", "-p",
           str(nats)], "nats")
    time.sleep(2)
    return ep, f"nats://127.0.0.1:{nats}"


def worker(a, name, fleet, *extra):
    args = [a.binary, "serve", "--model", a.model, "--port", "0", "--threads", str(a.threads),
            "--served-model-name", "m", "--log-interval", "0"]
    if fleet:
        args += ["--etcd-endpoints", fleet[0], "--nats-server", fleet[1]]
    proc, log = spawn(args + list(extra), name)
    port = int(wait_log(log, r"on http://127\.0\.0\.1:(\d+) ", name).group(1))
    return proc, f"http://127.0.0.1:{port}"


def frontend(a, fleet, n_workers):
    proc, log = spawn([a.binary, "frontend", "--port", "0", "--etcd-endpoints", fleet[0],
                       "--nats-server", fleet[1], "--poll-interval", "0.2"], "frontend")
    url = "http://127.0.0.1:" + wait_log(log, r"on http://127\.0\.0\.1:(\d+) ", "frontend").group(1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if json.loads(r.read()).get("workers") == n_workers:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("the workers did not register")


def bench(a, url, name, seed):
    out = f"/tmp/fleet_disagg-{name}-{os.getpid()}.json"
    subprocess.run([a.binary, "bench", "serve", "--base-url", url, "--num-prompts",
                    str(a.num_prompts), "--input-len", str(a.input_len), "--output-len",
                    str(a.output_len), "--max-concurrency", str(a.max_concurrency), "--warmup",
                    "4", "--seed", str(seed), "--result-json", out, "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    run = json.load(open(out))["runs"][0]
    return run


def summary(run, key):
    s = run[key]
    return s.get("median", s.get("p50")), s.get("p99")


def stop(*procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(30)


def loopback_bandwidth(total=1 << 30):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = [0]

    def sink():
        c, _ = srv.accept()
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            got[0] += len(b)

    t = threading.Thread(target=sink)
    t.start()
    buf = b"\0" * (4 << 20)
    start = time.monotonic()
    with socket.create_connection(srv.getsockname()) as c:
        for _ in range(total // len(buf)):
            c.sendall(buf)
    t.join()
    return got[0] / (time.monotonic() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/shardlm")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--num-prompts", type=int, default=64)
    ap.add_argument("--input-len", type=int, default=512)
    ap.add_argument("--output-len", type=int, default=64)
    ap.add_argument("--max-concurrency", type=int, default=4)
    ap.add_argument("--disagg-only", action="store_true",
                    help="only the disaggregated run (the KV transfer's bandwidth)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="direct and frontend runs alternate this many times (load drifts)")
    a = ap.parse_args()
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fleet = services(tmp)
            w, wurl = worker(a, "aggregated", fleet)
            fe, furl = frontend(a, fleet, 1)
            for r in range(0 if a.disagg_only else a.rounds):
                # fresh prompts every run: a run must not hit the previous one's prefix cache
                results[f"direct.{r}"] = bench(a, wurl, "direct", 2 * r + 1)
                results[f"frontend.{r}"] = bench(a, furl, "frontend", 2 * r + 2)
            stop(fe, w)
            p, purl = worker(a, "prefill", fleet, "--is-prefill-worker")
            d, _ = worker(a, "decode", fleet, "--disaggregation-mode", "decode")
            fe, furl = frontend(a, fleet, 2)
            results["disagg"] = bench(a, furl, "disagg", 2 * a.rounds + 1)
            with urllib.request.urlopen(purl + "/kv/stats") as r:
                kv = json.loads(r.read())
            doctor = subprocess.run([a.binary, "doctor", "--etcd-endpoints", fleet[0]],
                                    capture_output=True, text=True, timeout=120).stdout
            link = re.search(r"KV transfer link \S+: ([\d.]+) GB/s raw", doctor)
            stop(fe, p, d)
    finally:
        for proc in PROCS:
            if proc.poll() is None:
                proc.kill()
    for name, run in results.items():
        ttft, ttft99 = summary(run, "ttft_ms")
        tpot, tpot99 = summary(run, "tpot_ms")
        print(f"{name:9s} TTFT median {ttft:8.1f} ms p99 {ttft99:8.1f} | TPOT median "
              f"{tpot:7.2f} ms p99 {tpot99:7.2f} | output {run['output_throughput']:.1f} tok/s, "
              f"{run['failed']} failed")
    for r in range(0 if a.disagg_only else a.rounds):
        d, f = summary(results[f"direct.{r}"], "tpot_ms")[0], summary(results[f"frontend.{r}"],
                                                                      "tpot_ms")[0]
        print(f"round {r}: frontend TPOT overhead {f - d:+.2f} ms per token "
              f"({(f - d) / d * 100:+.1f}%)")
    if not a.disagg_only:
        d = sum(summary(results[f"direct.{r}"], "tpot_ms")[0] for r in range(a.rounds)) / a.rounds
        f = sum(summary(results[f"frontend.{r}"], "tpot_ms")[0] for r in range(a.rounds)) / a.rounds
        print(f"mean of the rounds: direct {d:.2f} ms, frontend {f:.2f} ms: {f - d:+.2f} ms "
              f"({(f - d) / d * 100:+.1f}%)")
    kv.setdefault("transfer_seconds", 0)
    bw = kv["bytes"] / kv["transfer_seconds"] if kv["transfer_seconds"] else 0
    print(f"KV transfer: {kv['transfers']} transfers, {kv['blocks']} blocks, "
          f"{kv['bytes'] / 1e6:.1f} MB in {kv['transfer_seconds']:.3f} s: {bw / 1e9:.2f} GB/s "
          f"(connect to ack, incl. the decode engine's import)")
    if link:
        raw = float(link.group(1)) * 1e9
        print(f"the link's raw bandwidth by `shardlm doctor` (64 MiB probes to the decode worker's "
              f"KV port): {raw / 1e9:.2f} GB/s; the KV transfer reached {bw / raw * 100:.0f}% of it")
    print(f"loopback TCP (one socket, 1 GiB): {loopback_bandwidth() / 1e9:.2f} GB/s")


if __name__ == "__main__":
    main()
