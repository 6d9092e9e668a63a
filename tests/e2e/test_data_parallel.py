"""Data parallelism inside one launch (`serve --dp N`) through the real binary: N replicas, each its
own process (or its own TP group), behind one API. --dp 2 and --dp 2 --tp 2 answer 64 concurrent
streams with the greedy text of one process and every replica serves some (/metrics); a replica
killed outright is named in the log, /health and /metrics while the other keeps serving, and it is
started again and rejoins; a replica whose TP rank dies is named unhealthy, the other keeps
serving, and the group heals back into the routing; bad flags fail at start-up with the flag named;
a bad request is a 400 and the server keeps serving."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import BINARY, SERVED_NAME, Server, descendants
from test_group_layouts import TINY_PROMPTS, TOOL, complete, concurrently, reference
from test_tensor_parallel import free_port

STREAMS = 64


class DpServer(Server):
    """A `serve --dp N`: the API's port is the controller's line (the replicas log their own)."""

    def _wait_for_port(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shardlm serve exited {self.proc.returncode}:\n{self.text()}")
            m = re.search(r"the API is on http://127\.0\.0\.1:(\d+) ", self.text())
            if m:
                return int(m.group(1))
            time.sleep(0.05)
        raise RuntimeError(f"shardlm serve --dp did not start:\n{self.text()}")

    def health(self):
        try:
            status, body = self.get("/health")
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        return status, json.loads(body)

    def served(self, replica):
        return self.metric("shardlm:dp_requests_served_total", replica=replica)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tiny") / "tiny.gguf")
    subprocess.run([TOOL, path, "--layers", "4"], check=True)
    return path


@pytest.fixture(scope="module")
def expected(tiny):
    return reference(tiny, TINY_PROMPTS)


def stream(server, prompt, max_tokens=12):
    """The text of a streamed greedy completion (SSE), chunk by chunk."""
    body = {"model": SERVED_NAME, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "stream": True}
    req = urllib.request.Request(server.base_url + "/v1/completions",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    text = ""
    with urllib.request.urlopen(req, timeout=120) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            text += json.loads(line[6:])["choices"][0]["text"]
    return text


def sixty_four(server, expected_texts):
    """64 concurrent requests (half streamed) over the prompts; each must equal one process."""
    prompts = [TINY_PROMPTS[i % len(TINY_PROMPTS)] for i in range(STREAMS)]

    streamed = set()

    def ask(s, p):
        if threading.get_ident() % 2:
            streamed.add(threading.get_ident())
            return stream(s, p), threading.get_ident()
        return complete(s, p), threading.get_ident()

    got = concurrently(server, prompts, ask, timeout=300)
    for p, g in zip(prompts, got):
        assert g is not None, "a stream did not answer"
        want = expected_texts[TINY_PROMPTS.index(p)]
        # Streams: the text; the others: text and log-probabilities, as one process gives them.
        assert g[0] == (want[0] if g[1] in streamed else want), (p, g)


def check_layout_and_spread(server, dp, ranks):
    text = server.text()
    assert f"data parallel: dp {dp} x " in text, text
    status, health = server.health()
    assert status == 200 and health["status"] == "ok", health
    assert [r["ranks"] for r in health["replicas"]] == ranks
    for r in range(dp):  # every replica served some of the 64
        assert server.served(r) > 0, server.metrics()
    assert server.metric("shardlm:dp_layout", dp=dp) == 1


@pytest.mark.parametrize("method", ["shortest_queue", "round_robin"])
def test_dp2_answers_64_streams_like_one_process(tiny, expected, method):
    s = DpServer(["--dp", "2", "--load-balance-method", method], model=tiny)
    try:
        assert f"load balance {method}" in s.text()
        assert s.metric("shardlm:dp_layout", load_balance_method=method) == 1
        texts = expected
        sixty_four(s, texts)
        check_layout_and_spread(s, 2, [[0], [1]])
        # /v1/models unchanged; a bad request is the replica's 400 and both keep serving.
        _, models = s.get("/v1/models")
        assert [m["id"] for m in json.loads(models)["data"]] == [SERVED_NAME]
        status, body = s.post("/v1/completions", {"model": SERVED_NAME, "prompt": "x",
                                                  "max_tokens": -1})
        assert status == 400 and "max_tokens" in body["error"]["message"], body
        assert complete(s, TINY_PROMPTS[0]) == texts[0]
        assert s.health()[1]["status"] == "ok"
    finally:
        assert s.stop() == 0, s.text()


def test_dp2_tp2_answers_64_streams_like_one_process(tiny, expected):
    s = DpServer(["--dp", "2", "--tp", "2", "--tp-exact", "--dist-timeout", "60"], model=tiny)
    try:
        sixty_four(s, expected)
        check_layout_and_spread(s, 2, [[0, 1], [2, 3]])
        assert "replica 0: ranks 0-1, replica 1: ranks 2-3" in s.text()
        assert s.text().count("supervising 2 local ranks") == 2  # each replica its own group
    finally:
        assert s.stop() == 0, s.text()


def test_stream_cut_by_a_dying_replica_ends_cleanly():
    """A stream whose replica dies mid-way ends with an error event and [DONE] naming the failure;
    the next requests go to the other replica (the default model: slow enough to cut)."""
    s = DpServer(["--dp", "2"])
    try:
        body = {"model": SERVED_NAME, "prompt": "Once upon a time", "max_tokens": 400,
                "temperature": 0, "ignore_eos": True, "stream": True}
        req = urllib.request.Request(s.base_url + "/v1/completions",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        events = []
        with urllib.request.urlopen(req, timeout=120) as r:
            for line in r:
                line = line.decode().strip()
                if not line.startswith("data: "):
                    continue
                events.append(line[6:])
                if len(events) == 5:  # streaming: kill the replica that serves it
                    busy = [x for x in s.health()[1]["replicas"] if x["outstanding"] == 1]
                    assert len(busy) == 1, s.health()
                    os.kill(busy[0]["pid"], signal.SIGKILL)
        assert events[-1] == "[DONE]", events[-3:]
        error = json.loads(events[-2])["error"]
        assert "failed" in error["message"] and error["code"] == 502, error
        assert len(events) < 300, "the stream was not cut"
        status, body = s.post("/v1/completions", {"model": SERVED_NAME, "prompt": "hi",
                                                  "max_tokens": 4})
        assert status == 200, body
        killed = rf"data-parallel replica {busy[0]['replica']} .* was killed by signal 9"
        wait_for(lambda: re.search(killed, s.text()), 10, "the death named")
        assert f"a stream from replica {busy[0]['replica']} was cut" in s.text()
        wait_for(lambda: s.health()[1]["status"] == "ok", 90, "the replica back")
    finally:
        assert s.stop() == 0, s.text()


def local_rank(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    return int(env[b"SHARDLM_LOCAL_RANK"])


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def keep_asking(server, expected_text, stop, failures, answers):
    while not stop.is_set():
        try:
            got = complete(server, TINY_PROMPTS[0])
        except AssertionError as e:  # a non-200 answer
            got = str(e)
        (answers if got == expected_text else failures).append(got)


def test_killed_replica_is_named_others_serve_and_it_rejoins(tiny, expected):
    s = DpServer(["--dp", "2"], model=tiny)
    try:
        _, health = s.health()
        victim = health["replicas"][1]["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: s.health()[1]["replicas"][1]["pid"] != victim, 10, "the death seen")
        status, health = s.health()
        assert status == 200, health
        if health["replicas"][1]["state"] != "serving":  # named while it starts again
            assert health["status"] == "degraded", health
            assert "killed by signal 9" in health["replicas"][1]["reason"], health
        # The other replica serves every request meanwhile.
        for _ in range(4):
            assert complete(s, TINY_PROMPTS[0]) == expected[0]
        assert re.search(rf"data-parallel replica 1 \(rank 1, pid {victim}\) was killed by signal "
                         r"9 \(SIGKILL\); the other replicas keep serving", s.text()), s.text()
        # It is started again and rejoins the routing.
        wait_for(lambda: s.health()[1]["status"] == "ok", 60, "replica 1 back")
        assert s.metric("shardlm:dp_replica_restarts_total", replica=1) == 1
        assert s.health()[1]["replicas"][1]["pid"] != victim
        before = s.served(1)
        sixty_four(s, expected)
        assert s.served(1) > before
    finally:
        assert s.stop() == 0, s.text()


def test_tp_rank_of_one_replica_dies_other_serves_group_heals(tiny, expected):
    s = DpServer(["--dp", "2", "--tp", "2", "--tp-exact", "--dist-timeout", "60"], model=tiny)
    try:
        _, health = s.health()
        supervisor = health["replicas"][1]["pid"]
        ranks = descendants(supervisor)
        assert len(ranks) == 2, ranks
        worker = next(p for p in ranks if local_rank(p) == 1)
        time.sleep(11)  # a rank that served 10 s is restarted by its supervisor (supervisor.h)
        os.kill(worker, signal.SIGKILL)
        stop, failures, answers = threading.Event(), [], []
        asker = threading.Thread(target=keep_asking,
                                 args=(s, expected[0], stop, failures, answers))
        asker.start()
        try:
            # The first request routed there finds its group broken: the replica names the
            # rank, the controller names the replica and routes around it.
            named = r"data-parallel replica 1 \(ranks 2-3, pid \d+\) is unhealthy"
            wait_for(lambda: re.search(named, s.text()), 30, "replica 1 named unhealthy")
            assert re.search(r"\[replica 1\] .*not answering: rank 1 ", s.text()), s.text()
            wait_for(lambda: s.health()[1]["status"] == "ok", 120, "replica 1 healed")
        finally:
            stop.set()
            asker.join(150)
        assert "is unhealthy" in s.text()
        assert len(answers) > 0
        # At most the requests replica 1 had begun when its rank died fail; none after.
        assert len(failures) <= 1, failures
        sixty_four(s, expected)
    finally:
        assert s.stop() == 0, s.text()


def test_doctor_prints_the_layout(tiny):
    out = subprocess.run([BINARY, "doctor", "--model", tiny, "--dp", "2", "--tp", "2",
                          "--nproc-per-node", "4", "--dist-init-addr", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert ("data parallel: dp 2 x pp 1 x tp 2 = 4 ranks; replica 0: ranks 0-1, replica 1: "
            "ranks 2-3; load balance shortest_queue") in text, text
    assert text.index("data parallel:") < text.index("verdict: ok"), text


def test_taken_port_fails_before_any_replica_starts(tiny):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([BINARY, "serve", "--model", tiny, "--port", str(port), "--dp", "2"],
                             capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in text, text
    assert "replica 0 (rank 0): pid" not in text, text


@pytest.mark.parametrize("flags,message", [
    (["--dp", "0"], "--dp 0 is not a replica count"),
    (["--dp", "2", "--nproc-per-node", "3"], "--nproc-per-node 3 does not match --dp 2"),
    (["--dp", "2", "--nnodes", "2", "--node-rank", "0", "--dist-init-addr", "127.0.0.1:1"],
     "--nnodes 2"),
    (["--dp", "2", "--load-balance-method", "fastest"], "--load-balance-method 'fastest'"),
    (["--data-parallel-size", "2", "--metrics-port", "0"], "--metrics-port with --dp 2"),
    # Every replica refuses the layout itself (the tiny model's 4 heads do not split over 3).
    (["--dp-size", "2", "--tp", "3"], "no data-parallel replica started"),
])
def test_bad_flags_are_named(tiny, flags, message):
    out = subprocess.run([BINARY, "serve", "--model", tiny, "--port", "0", *flags],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert message in out.stdout + out.stderr, out.stdout + out.stderr
