"""Tensor parallelism across processes on loopback: the default model served by TP=3 (three
`shardlm serve` ranks joined through --nnodes/--node-rank/--dist-init-addr, --tp-exact) gives the
same greedy outputs through the HTTP API as one process; worker ranks answer /health and refuse generation; the
group shuts down cleanly; a missing rank is named at start-up."""
import json
import os
import re
import socket
import subprocess
import urllib.request

from conftest import BINARY, MODEL, SERVED_NAME, Server

PROMPTS = ["The capital of France is", "Write one sentence about the sea:", "1, 2, 3, 4,"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def greedy(server, prompt):
    status, body = server.post("/v1/completions", {"model": SERVED_NAME, "prompt": prompt,
                                                    "max_tokens": 24, "temperature": 0,
                                                    "ignore_eos": True})
    assert status == 200, body
    return body["choices"][0]["text"]


def group_args(rank, port, tp=3, kind="--tp"):
    return [kind, str(tp), "--tp-exact", "--nnodes", str(tp), "--node-rank", str(rank),
            "--dist-init-addr", f"127.0.0.1:{port}", "--cluster-token", "e2e", "--dist-timeout",
            "60"]


def start_workers(port):
    return [subprocess.Popen([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                              "--log-interval", "0", *group_args(r, port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for r in (1, 2)]


def model_mapping_kib(pid, field, path=MODEL):
    """KiB of one smaps field (Rss, FilePmdMapped) summed over the model file's mappings."""
    total_kib, in_model = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(" ", 1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                in_model = line.rstrip().endswith(os.path.realpath(path))
            elif in_model and first == field + ":":
                total_kib += int(line.split()[1])
    return total_kib


def resident_model_mib(pid, path=MODEL):
    """MiB of the model file's mapping resident in the process (its smaps Rss lines)."""
    return model_mapping_kib(pid, "Rss", path) / 1024


def maps_in_huge_pages(pid):
    """True when the kernel maps the model's page cache in 2 MiB pages (large folios, as Linux
    6.x does for a file read in sequence): a fault then maps a whole huge page, whichever rows the
    rank reads, and Rss no longer tells the rank's share."""
    return model_mapping_kib(pid, "FilePmdMapped") > 0


def test_tp3_equals_single_process():
    single = Server()
    expected = [greedy(single, p) for p in PROMPTS]
    single_mib = resident_model_mib(single.proc.pid)
    huge = maps_in_huge_pages(single.proc.pid)
    assert single.stop() == 0

    port = free_port()
    workers = start_workers(port)
    master = Server(group_args(0, port))
    try:
        assert [greedy(master, p) for p in PROMPTS] == expected
        # Each rank holds about a third of the weights (besides the embedding table).
        m = re.search(r"rank 0 of 3: weights ([\d.]+) MiB of the model's ([\d.]+) MiB", master.text())
        assert m and float(m.group(1)) < 0.4 * float(m.group(2)), master.text()
        # Measured: the model file's resident pages on each rank are under half of one process's
        # (0.48 here: its third of the weights, the rows it looked up, and the neighbours' rows
        # the kernel maps around each fault, which on one machine share the page cache).
        for pid in [master.proc.pid] + [w.pid for w in workers]:
            if huge or maps_in_huge_pages(pid):
                print("the model file is mapped in huge pages: resident pages not compared")
                break
            assert resident_model_mib(pid) < 0.55 * single_mib, (resident_model_mib(pid),
                                                                 single_mib)
        assert master.metric("shardlm:comm_seconds_total") > 0
        assert master.metric("shardlm:engine_step_seconds_count") > 0
        # Streaming goes through the group as well.
        status, body = master.post("/v1/completions", {"model": SERVED_NAME, "prompt": PROMPTS[0],
                                                        "max_tokens": 8, "temperature": 0})
        assert status == 200 and body["usage"]["completion_tokens"] >= 1
    finally:
        assert master.stop() == 0, master.text()
        for w in workers:
            out, _ = w.communicate(timeout=30)
            assert w.returncode == 0, out
            assert "shut the group down" in out


def test_missing_rank_is_named():
    port = free_port()
    proc = subprocess.run([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                           "--pp", "2", "--nnodes", "2", "--node-rank", "0", "--dist-init-addr",
                           f"127.0.0.1:{port}", "--dist-timeout", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "rank(s) 1 of 2 never reached the rendezvous" in proc.stderr, proc.stderr
    assert "within 2 s" in proc.stderr


def test_wrong_token_is_refused():
    port = free_port()
    master = subprocess.Popen([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                               *group_args(0, port, tp=2, kind="--pp")[:-2], "--dist-timeout", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    intruder = subprocess.run([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                               "--pp", "2", "--nnodes", "2", "--node-rank", "1",
                               "--dist-init-addr", f"127.0.0.1:{port}", "--cluster-token", "bad",
                               "--dist-timeout", "5"],
                              capture_output=True, text=True, timeout=60)
    assert intruder.returncode == 1
    assert "cluster token" in intruder.stderr
    out, _ = master.communicate(timeout=60)
    assert master.returncode == 1 and "never reached the rendezvous" in out, out


def test_rank_killed_mid_stream_fails_fast():
    import signal
    import threading
    import time
    port = free_port()
    workers = start_workers(port)
    master = Server(group_args(0, port))
    lines = []

    def stream():
        req = urllib.request.Request(
            master.base_url + "/v1/completions", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"model": SERVED_NAME, "prompt": "Tell me a story.", "max_tokens": 2000,
                             "temperature": 0, "stream": True, "ignore_eos": True}).encode())
        with urllib.request.urlopen(req, timeout=60) as r:
            for line in r:
                lines.append(line.decode().strip())

    try:
        t = threading.Thread(target=stream)
        t.start()
        while not any(l.startswith("data: {") for l in lines):
            t.join(0.05)
        killed_at = time.monotonic()
        workers[1].send_signal(signal.SIGKILL)
        t.join(15)
        assert not t.is_alive(), "the stream did not end after a rank died"
        assert time.monotonic() - killed_at < 10  # the issue asks for a 503 within 10 s
        final = json.loads([l for l in lines if l.startswith("data: {")][-1][len("data: "):])
        assert final["choices"][0]["finish_reason"] == "abort"
        status, body = master.post("/v1/completions", {"model": SERVED_NAME, "prompt": "hi",
                                                        "max_tokens": 2})
        assert status == 503, body
        # The killed node is named (the other worker may be gone too by then: it exits as soon as
        # its own collectives fail).
        message = body["error"]["message"]
        assert "not answering: " in message and "rank 2 on" in message.split("not answering: ")[1]
        try:
            urllib.request.urlopen(master.base_url + "/health", timeout=10)
            assert False, "/health should report the failure"
        except urllib.error.HTTPError as e:
            assert e.code == 503
        # The surviving worker waits for the group to re-form (test_group_healing.py) ...
        assert workers[0].poll() is None
        workers[1].wait(timeout=10)
        # ... and ends with the master.
        assert master.stop() == 0, master.text()
        out, _ = workers[0].communicate(timeout=30)
        assert workers[0].returncode == 0 and "the master shut the group down" in out, out
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        master.stop()
