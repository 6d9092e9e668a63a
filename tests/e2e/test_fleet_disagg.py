"""Disaggregated prefill/decode in a fleet (issue 20), with real etcd and nats-server processes and
workers as separate `shardlm serve` processes: a prefill worker (--disaggregation-mode prefill or
--is-prefill-worker) computes each prompt's KV and sends its blocks over TCP to a decode worker
(--disaggregation-mode decode), which continues from them. The same greedy text as one aggregated
worker (completions, chat, streams, 64 concurrent streams through the openai client); the decode
worker received exactly the prompts' full blocks and hit them in its prefix cache; a dead prefill
worker is routed around, and with none left the client gets a clean 503 at once; bytes on the KV
transfer port that are not a transfer of this version are refused with a log line while the
worker keeps serving; a stream whose worker dies before its first token is retried on another
(migration) and equals the reference."""
import json
import re
import socket
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import BINARY, SERVED_NAME, STARTED, Server, kill_tree
from test_fleet import (Frontend, pytestmark, services, stream_events, tiny,  # noqa: F401
                        wait_for, worker)

BLOCK = 8  # tokens per KV block on every worker of these tests


def reference(model):
    """One aggregated worker outside the fleet: what disaggregated serving must equal."""
    s = Server(model=model, extra_args=["--block-size", str(BLOCK)])
    STARTED.append(s.proc)
    return s


def prefill_worker(model, etcd, nats, *extra):
    return worker(model, etcd, nats, "--block-size", str(BLOCK), "--disaggregation-mode",
                  "prefill", *extra)


def decode_worker(model, etcd, nats, *extra):
    return worker(model, etcd, nats, "--block-size", str(BLOCK), "--disaggregation-mode",
                  "decode", *extra)


def disaggregated_fleet(model, etcd, nats):
    """The reference, a prefill and a decode worker, and a frontend that sees both workers."""
    ref = reference(model)
    p = prefill_worker(model, etcd, nats)
    d = decode_worker(model, etcd, nats)
    fe = Frontend(etcd, nats)
    fe.wait_workers(2)
    return ref, p, d, fe


def kv_stats(server):
    return json.loads(server.get("/kv/stats")[1])


def kv_port(decode):
    m = wait_for(lambda: re.search(r"KV transfers on port (\d+)", decode.text()),
                 what="the decode worker's KV port")
    return int(m.group(1))


def complete(server, prompt, max_tokens=16):
    body = {"model": SERVED_NAME, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True}
    status, out = server.post("/v1/completions", body)
    assert status == 200, out
    return out["choices"][0]["text"], out["usage"]["prompt_tokens"]


def chat(server, text, max_tokens=16):
    body = {"model": SERVED_NAME, "messages": [{"role": "system", "content": "be brief"},
                                               {"role": "user", "content": text}],
            "max_tokens": max_tokens, "temperature": 0}
    status, out = server.post("/v1/chat/completions", body)
    assert status == 200, out
    return out["choices"][0]["message"]["content"]


PROMPTS = ["hi", "a prompt of exactly a few words",
           "a longer prompt that spans several blocks of the KV cache " * 3,
           " ".join(f"word{i}" for i in range(60))]


def test_disaggregated_equals_aggregated_blocks_transferred(tiny, services):
    ref, p, d, fe = disaggregated_fleet(tiny, *services)
    expected_blocks = 0
    for prompt in PROMPTS:
        want, n_prompt = complete(ref, prompt)
        got, n_got = complete(fe, prompt)
        assert (got, n_got) == (want, n_prompt), prompt
        expected_blocks += (n_prompt - 1) // BLOCK
    # the decode worker received the prompts' full blocks (all but the last token's) and
    # computed only the rest: its prefix cache hit them
    stats = kv_stats(d)
    assert stats["role"] == "decode" and stats["transfers"] == len(PROMPTS), stats
    assert stats["blocks"] == expected_blocks > 0, stats
    assert stats["refused"] == 0
    assert kv_stats(p)["blocks"] == expected_blocks
    assert d.metric("shardlm:prefix_cache_hits_total") == expected_blocks * BLOCK
    assert fe.metric("shardlm:frontend_prefill_blocks_total") == expected_blocks
    # the prefill worker answered no client request itself; the decode worker all of them
    assert p.metric("shardlm:request_success_total") == len(PROMPTS)  # one-token prefills
    assert d.metric("shardlm:request_success_total") == len(PROMPTS)
    # chat requests: the template is rendered on the prefill worker as serve renders it
    for text in ["what is the KV cache of a transformer model", "hello"]:
        assert chat(fe, text) == chat(ref, text)
    # bad input is the client's 400, whichever worker finds it; the fleet keeps serving
    status, err = fe.post("/v1/completions", {"model": SERVED_NAME, "prompt": "x",
                                              "max_tokens": -3})
    assert status == 400 and "max_tokens" in err["error"]["message"], err
    status, err = fe.post("/v1/completions", {"model": SERVED_NAME, "prompt": "x " * 5000})
    assert status == 400, err
    assert complete(fe, PROMPTS[2]) == complete(ref, PROMPTS[2])
    for s in (fe, p, d, ref):
        assert s.stop() == 0, s.text()


def test_64_concurrent_disaggregated_streams_openai_client(tiny, services):
    import openai
    etcd, nats = services
    ref = reference(tiny)
    p = worker(tiny, etcd, nats, "--block-size", str(BLOCK), "--is-prefill-worker")
    d = decode_worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats, mode="kv", extra=["--model", tiny])
    fe.wait_workers(2)
    client = openai.OpenAI(base_url=fe.base_url + "/v1", api_key="unused", max_retries=0,
                           timeout=120)
    prompts = [f"stream number {i} asks for a story about blocks of keys and values" for i in
               range(64)]

    def run(prompt):
        chunks = client.completions.create(model=SERVED_NAME, prompt=prompt, max_tokens=12,
                                           temperature=0, stream=True,
                                           extra_body={"ignore_eos": True})
        return "".join(c.choices[0].text for c in chunks if c.choices)

    expected = [complete(ref, prompt, 12)[0] for prompt in prompts]
    with ThreadPoolExecutor(max_workers=64) as pool:
        got = list(pool.map(run, prompts))
    assert got == expected
    # a transfer per request, in parts when a batch's chunks completed blocks step by step
    assert kv_stats(p)["role"] == "prefill" and kv_stats(p)["transfers"] == 64
    assert kv_stats(d)["transfers"] == kv_stats(p)["parts"] >= 64
    assert fe.metric("shardlm:frontend_errors_total") == 0
    for s in (fe, p, d, ref):
        assert s.stop() == 0, s.text()


def test_dead_prefill_worker_routed_around_then_clean_error(tiny, services):
    etcd, nats = services
    ref = reference(tiny)
    p1, p2 = prefill_worker(tiny, etcd, nats), prefill_worker(tiny, etcd, nats)
    d = decode_worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats)
    fe.wait_workers(3)
    assert complete(fe, PROMPTS[2]) == complete(ref, PROMPTS[2])
    kill_tree(p1.proc)
    # every request still succeeds (the refused prefill worker is skipped), before and after
    # its lease expires
    for i in range(6):
        prompt = f"after the first prefill worker died {i}"
        assert complete(fe, prompt) == complete(ref, prompt)
    kill_tree(p2.proc)
    start = time.monotonic()
    status, err = fe.post("/v1/completions", {"model": SERVED_NAME, "prompt": "nobody prefills",
                                              "max_tokens": 4, "stream": True})
    assert time.monotonic() - start < 10, "the request hung on dead prefill workers"
    assert status == 503 and "prefill" in err["error"]["message"], err
    assert fe.metric("shardlm:frontend_errors_total") >= 1
    # a prefill worker that comes back is used again
    p3 = prefill_worker(tiny, etcd, nats)
    wait_for(lambda: fe.post("/v1/completions", {"model": SERVED_NAME, "prompt": "back",
                                                 "max_tokens": 2})[0] == 200,
             timeout=20, what="the new prefill worker")
    assert complete(fe, PROMPTS[3]) == complete(ref, PROMPTS[3])
    for s in (fe, p3, d, ref):
        assert s.stop() == 0, s.text()


def frame(version=1, kind=1, request_id=7, payload=b"", length=None):
    n = len(payload) if length is None else length
    return b"SLKV" + struct.pack("<HHQQ", version, kind, request_id, n) + b"\0" * 8 + payload


def exchange(port, data, close_write=True):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_hostile_bytes_on_the_kv_transfer_port_are_refused(tiny, services):
    ref, p, d, fe = disaggregated_fleet(tiny, *services)
    port = kv_port(d)
    assert b"bad magic" in exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\xff" * 64)
    assert b"version" in exchange(port, frame(version=99))
    assert b"payload of" in exchange(port, frame(length=1 << 40))
    assert b"not a block transfer" in exchange(port, frame(kind=2))
    meta = json.dumps({"n_layers": 1}).encode()
    assert b"malformed" in exchange(port, frame(payload=struct.pack("<I", len(meta)) + meta))
    # blocks whose hashes are not their tokens' are refused
    bad = json.dumps({"n_layers": 2, "kv_dim": 1, "block_size": BLOCK, "elem_bytes": 4,
                      "values": True, "tokens": [1] * BLOCK, "hashes": [12345]}).encode()
    reply = exchange(port, frame(payload=struct.pack("<I", len(bad)) + bad))
    assert reply[:4] == b"SLKV" and struct.unpack("<H", reply[6:8])[0] == 3, reply
    assert b"probe too large" in exchange(port, frame(kind=4, length=(1 << 30) + 1))
    exchange(port, frame(length=1000) + b"short")  # a payload cut short
    exchange(port, b"")  # connect and leave
    wait_for(lambda: kv_stats(d)["refused"] >= 8, what="the refusals counted")
    assert d.text().count("kv transfer:") >= 6
    # the worker keeps serving, transfers included
    for prompt in PROMPTS:
        assert complete(fe, prompt) == complete(ref, prompt)
    assert kv_stats(d)["transfers"] == len(PROMPTS)
    for s in (fe, p, d, ref):
        assert s.stop() == 0, s.text()


def test_doctor_measures_the_kv_transfer_link(tiny, services):
    """`shardlm doctor --etcd-endpoints` probes each decode worker's KV transfer port with 64 MiB
    of filler (read and dropped there) and prints the raw bandwidth that a transfer can approach;
    the worker keeps serving and counts no refusal."""
    etcd, nats = services
    ref, p, d, fe = disaggregated_fleet(tiny, etcd, nats)
    port = kv_port(d)
    out = subprocess.run([BINARY, "doctor", "--etcd-endpoints", etcd.endpoint, "--nats-server",
                          nats.url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"KV transfer link [\w.\[\]:-]+:%d: ([\d.]+) GB/s raw" % port, out.stdout)
    assert m and float(m.group(1)) > 0, out.stdout
    assert kv_stats(d)["refused"] == 0
    for prompt in PROMPTS[:2]:
        assert complete(fe, prompt) == complete(ref, prompt)
    for s in (fe, p, d, ref):
        assert s.stop() == 0, s.text()


class DyingWorker:
    """A registered 'worker' that takes each request and dies before its first token: it closes
    the connection at once, or after sending the stream's HTTP head."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.taken = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    if self.taken % 2:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n")
                except OSError:
                    pass
                self.taken += 1

    def register(self, etcd, worker_id="dying-worker"):
        entry = {"version": 1, "id": worker_id, "model": SERVED_NAME,
                 "url": f"http://127.0.0.1:{self.port}", "block_size": BLOCK}
        etcd.put(f"shardlm/workers/{SERVED_NAME}/{worker_id}", json.dumps(entry))

    def close(self):
        self.sock.close()


def test_stream_whose_worker_dies_before_its_first_token_is_retried(tiny, services):
    etcd, nats = services
    ref = reference(tiny)
    p = prefill_worker(tiny, etcd, nats)
    d = decode_worker(tiny, etcd, nats)
    dying = DyingWorker()
    dying.register(etcd)
    fe = Frontend(etcd, nats)
    fe.wait_workers(3)
    for i in range(8):
        prompt = f"migrated request {i}"
        events = stream_events(fe.base_url, prompt, 8)
        assert events[-1] == "[DONE]" and not any('"error"' in e for e in events), events
        text = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
        assert text == complete(ref, prompt, 8)[0]
    assert dying.taken >= 3, "the dying worker was never tried"
    assert fe.metric("shardlm:frontend_errors_total", kind="failed_before_output") >= 3
    dying.close()
    for s in (fe, p, d, ref):
        assert s.stop() == 0, s.text()


def test_overlapped_kv_transfer_of_a_chunked_prefill(tiny, services):
    """A long prompt's prefill in chunks of --max-num-batched-tokens: the full blocks of each chunk
    go to the decode worker while the next chunk computes (one part per step); the output is the
    aggregated worker's. SHARDLM_KV_TRANSFER_OVERLAP=0 sends them in one part after the prefill."""
    import os
    etcd, nats = services
    ref = reference(tiny)
    prompt = " ".join(f"word{i}" for i in range(60))  # 409 tokens
    want, n_prompt = complete(ref, prompt)
    blocks = (n_prompt - 1) // BLOCK
    for overlap in ("1", "0"):
        p = worker(tiny, etcd, nats, "--block-size", str(BLOCK), "--disaggregation-mode",
                   "prefill", "--max-num-batched-tokens", "64") if overlap == "1" else Server(
            model=tiny, env={**os.environ, "SHARDLM_KV_TRANSFER_OVERLAP": "0"},
            extra_args=["--etcd-endpoints", etcd.endpoint, "--nats-server", nats.url,
                        "--lease-ttl", "2", "--block-size", str(BLOCK), "--disaggregation-mode",
                        "prefill", "--max-num-batched-tokens", "64"])
        STARTED.append(p.proc)
        d = decode_worker(tiny, etcd, nats)
        fe = Frontend(etcd, nats)
        fe.wait_workers(2)
        assert complete(fe, prompt) == (want, n_prompt)
        parts = kv_stats(p)["parts"]
        # at most a part per chunk (a poll can span two steps on this tiny model)
        assert (2 <= parts <= -(-n_prompt // 64)) if overlap == "1" else parts == 1, parts
        assert kv_stats(d)["blocks"] == blocks and kv_stats(d)["transfers"] == parts
        assert d.metric("shardlm:prefix_cache_hits_total") == blocks * BLOCK
        for s in (fe, p, d):
            assert s.stop() == 0, s.text()
    assert ref.stop() == 0, ref.text()
