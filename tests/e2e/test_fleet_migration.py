"""Mid-stream migration (issue 20; Dynamo's request migration): `shardlm frontend
--migration-limit N`. With real etcd and nats-server, two workers as separate processes: the worker
serving half of 64 concurrent streams is killed with SIGKILL mid-stream, and every stream goes on
from the other worker under the same id, its text equal to an uninterrupted greedy run (completions
and chat). The worker API beneath it: return_token_ids, and resume_token_ids continuing a request
exactly, with bad values refused with a 400 naming the field while the worker keeps serving.
Disaggregated: a decode worker killed mid-stream, its streams moved to the other decode worker
(the prefill worker sends their prompts' KV again). A worker that is a TP group and loses a rank
ends its streams with finish_reason "abort" while it re-forms: those move as well.
With --migration-limit 0 the cut streams end with an error event and [DONE] (test_fleet.py)."""
import json
import os
import signal
import threading
import time
import urllib.request

from conftest import SERVED_NAME, kill_tree
from test_fleet import (Frontend, pytestmark, services, tiny, wait_for,  # noqa: F401
                        worker)

MAX_TOKENS = 160
LONG = 384  # the disaggregated test's streams


def body_of(kind, i, stream=True, **extra):
    b = {"model": SERVED_NAME, "max_tokens": MAX_TOKENS, "temperature": 0, "ignore_eos": True,
         "stream": stream, **extra}
    if kind == "chat":
        b["messages"] = [{"role": "user", "content": f"tell me story number {i}"}]
    else:
        b["prompt"] = f"once upon a time, story {i}:"
    return b


def path_of(kind):
    return "/v1/chat/completions" if kind == "chat" else "/v1/completions"


def text_of(kind, choice):
    if kind == "chat":
        return choice.get("delta", choice.get("message", {})).get("content") or ""
    return choice.get("text") or ""


class Stream(threading.Thread):
    """One raw SSE stream: its events as they arrive (so the test can wait until it is mid-way)."""

    def __init__(self, base_url, kind, i, **extra):
        super().__init__(daemon=True)
        self.kind, self.i, self.base_url, self.extra = kind, i, base_url, extra
        self.events, self.error = [], None

    def run(self):
        req = urllib.request.Request(self.base_url + path_of(self.kind),
                                     data=json.dumps(body_of(self.kind, self.i,
                                                             **self.extra)).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                for line in r:
                    line = line.decode().strip()
                    if line.startswith("data: "):
                        self.events.append(line[6:])
        except Exception as e:  # noqa: BLE001: reported by the test
            self.error = repr(e)

    def chunks(self):
        return [json.loads(e) for e in self.events if e != "[DONE]"]

    def text(self):
        return "".join(text_of(self.kind, c["choices"][0]) for c in self.chunks() if c.get("choices"))


def streams_under_way(fe, a):
    """64 streams through the frontend (completions and chats), returned once each is past its
    first tokens (a stream can be done in three coalesced events on a loaded machine) and worker
    `a` serves some of them."""
    streams = [Stream(fe.base_url, "chat" if i % 2 else "completion", i) for i in range(64)]
    for s in streams:
        s.start()
    wait_for(lambda: all(len(s.events) >= 4 or s.events[-1:] == ["[DONE]"] for s in streams),
             timeout=120, what="64 streams")
    assert a.metric("shardlm:num_requests_running") > 0
    return streams


def test_streams_migrate_mid_stream_and_equal_uninterrupted_runs(tiny, services):
    etcd, nats = services
    a, b = worker(tiny, etcd, nats), worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats, extra=["--migration-limit", "2"])
    fe.wait_workers(2)
    # every stream is past its first tokens (round-robin gave worker a half of them) ...
    streams = streams_under_way(fe, a)
    kill_tree(a.proc)  # ... when worker a dies: SIGKILL, no drain
    for s in streams:
        s.join(300)
        assert not s.is_alive(), "a stream hung after its worker died"
        assert s.error is None, s.error
    migrated = fe.metric("shardlm:frontend_errors_total", kind="migrated_mid_stream")
    print(f"{migrated:.0f} of 64 streams moved to the other worker")
    assert 0 < migrated <= 64, fe.text()[-3000:]
    # the uninterrupted runs, from the surviving worker
    for s in streams:
        status, full = b.post(path_of(s.kind), body_of(s.kind, s.i, stream=False))
        assert status == 200, full
        assert s.events[-1] == "[DONE]", s.events[-3:]
        chunks = s.chunks()
        assert not any("error" in c for c in chunks), chunks[-2:]
        assert len({c["id"] for c in chunks}) == 1, "the stream's id changed"
        assert not any("token_ids" in c["choices"][0] for c in chunks if c.get("choices"))
        assert s.text() == text_of(s.kind, full["choices"][0]), (s.kind, s.i)
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
        assert finish[-1] == "length" and not any(finish[:-1])
        if s.kind == "chat":
            roles = [c["choices"][0]["delta"].get("role") for c in chunks if c.get("choices")]
            assert roles[0] == "assistant" and not any(roles[1:]), "a second role chunk"
    assert "stream moved from worker" in fe.text()
    for s in (fe, b):
        assert s.stop() == 0, s.text()


def test_streams_of_a_worker_whose_group_broke_migrate(tiny, services):
    """A worker that is a TP 2 group (--tp-exact: one process's outputs) loses its rank 1: its
    master stays up and ends its streams with finish_reason "abort" (then re-forms the group);
    the frontend takes that as a cut and moves every such stream to the other worker, whose
    greedy text it continues exactly."""
    from test_rank_lost_mid_stream import local_rank_pids
    from test_tensor_parallel import free_port
    etcd, nats = services
    a = worker(tiny, etcd, nats, "--tp", "2", "--tp-exact", "--nproc-per-node", "2",
               "--dist-init-addr", f"127.0.0.1:{free_port()}")
    b = worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats, extra=["--migration-limit", "2"])
    fe.wait_workers(2)
    ranks = local_rank_pids(a.proc.pid)
    time.sleep(10.5)  # a rank lost in its first 10 s stops the node (supervisor.cpp)
    streams = streams_under_way(fe, a)
    os.kill(ranks[1], signal.SIGKILL)
    for s in streams:
        s.join(300)
        assert not s.is_alive(), "a stream hung after its worker's group broke"
        assert s.error is None, s.error
    assert a.proc.poll() is None, "the worker whose group broke exited"
    migrated = fe.metric("shardlm:frontend_errors_total", kind="migrated_mid_stream")
    print(f"{migrated:.0f} of 64 streams moved to the other worker")
    assert 0 < migrated <= 64, fe.text()[-3000:]
    assert "it ended the stream with finish_reason abort" in fe.text(), fe.text()[-3000:]
    for s in streams:
        status, full = b.post(path_of(s.kind), body_of(s.kind, s.i, stream=False))
        assert status == 200, full
        chunks = s.chunks()
        assert s.events[-1] == "[DONE]" and not any("error" in c for c in chunks), chunks[-2:]
        assert len({c["id"] for c in chunks}) == 1, "the stream's id changed"
        assert s.text() == text_of(s.kind, full["choices"][0]), (s.kind, s.i)
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
        assert finish[-1] == "length" and not any(finish[:-1]), finish
    for s in (fe, a, b):
        assert s.stop() == 0, s.text()[-3000:]


def test_worker_resumes_from_token_ids_and_refuses_bad_ones(tiny):
    from conftest import Server
    w = Server(model=tiny)
    prompt = "the resumed request continues"
    base = {"model": SERVED_NAME, "prompt": prompt, "max_tokens": 24, "temperature": 0,
            "ignore_eos": True}
    status, full = w.post("/v1/completions", {**base, "return_token_ids": True})
    assert status == 200, full
    ids, text = full["choices"][0]["token_ids"], full["choices"][0]["text"]
    assert len(ids) == 24
    for k in (1, 9, 23):  # the rest of the run, from its first k tokens
        status, rest = w.post("/v1/completions", {**base, "resume_token_ids": ids[:k],
                                                  "return_token_ids": True})
        assert status == 200, rest
        assert rest["choices"][0]["token_ids"] == ids[k:]
        assert rest["usage"]["completion_tokens"] == 24
        assert text.endswith(rest["choices"][0]["text"])
    for bad, what in (({"resume_token_ids": ids}, "max_tokens"),
                      ({"resume_token_ids": [10 ** 7]}, "outside the vocabulary"),
                      ({"resume_token_ids": "x"}, "list of token ids"),
                      ({"resume_token_ids": ids[:2], "n": 2}, "n = 1")):
        status, err = w.post("/v1/completions", {**base, **bad})
        assert status == 400 and what in err["error"]["message"], (bad, err)
        assert err["error"]["param"] == "resume_token_ids", err
    status, again = w.post("/v1/completions", base)
    assert status == 200 and again["choices"][0]["text"] == text
    assert w.stop() == 0, w.text()


def test_disaggregated_streams_migrate_to_another_decode_worker(tiny, services):
    """A decode worker killed mid-stream: its streams move to the other decode worker, whose
    prefill the prefill worker computes and sends again; the text equals one aggregated worker's."""
    from test_fleet_disagg import decode_worker, prefill_worker, reference
    etcd, nats = services
    ref = reference(tiny)
    p = prefill_worker(tiny, etcd, nats)
    d1, d2 = decode_worker(tiny, etcd, nats), decode_worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats, extra=["--migration-limit", "1"])
    fe.wait_workers(3)
    # Long streams (the tiny model's context is 512): a decode worker runs 8 streams of 160 tokens
    # in well under the time between two metric polls, so d1 could end its share before the kill.
    streams = [Stream(fe.base_url, "chat" if i % 2 else "completion", i, max_tokens=LONG)
               for i in range(16)]
    for s in streams:
        s.start()
    # d1 is mid-way through streams when it dies. Not "every stream has 4 events": the prefill
    # worker takes the prompts in turn and the frontend relays tokens in coalesced events, so on a
    # loaded machine d1 could finish its share before the last stream's fourth event.
    wait_for(lambda: d1.metric("shardlm:num_requests_running") > 0
             and d1.metric("shardlm:generation_tokens_total") >= 16, timeout=120,
             what="d1 mid-way through its streams")
    kill_tree(d1.proc)
    for s in streams:
        s.join(300)
        assert not s.is_alive() and s.error is None, s.error
    assert fe.metric("shardlm:frontend_errors_total", kind="migrated_mid_stream") > 0
    for s in streams:
        status, full = ref.post(path_of(s.kind),
                                body_of(s.kind, s.i, stream=False, max_tokens=LONG))
        assert status == 200, full
        assert s.events[-1] == "[DONE]" and not any("error" in c for c in s.chunks())
        assert s.text() == text_of(s.kind, full["choices"][0]), (s.kind, s.i)
    for s in (fe, p, d2, ref):
        assert s.stop() == 0, s.text()
