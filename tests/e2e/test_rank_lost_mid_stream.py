"""A rank killed while 64 streams are being served, in a TP 2 x PP 2 group of one supervised node
(--nproc-per-node 4, the shared-memory TP all-reduce), with --dist-step-timeout 60 so that no
timeout can be what notices it:
- the master names the dead rank at once (its TP peer sees the process gone at the all-reduce's
  barrier, or its send to the next stage finds rank 1 gone; not after the step timeout), and the
  other stage's ranks stop waiting for it too;
- every stream ends with finish_reason "abort" and `data: [DONE]`, and its usage counts the tokens
  it was sent (counted here from the per-token logprobs of every chunk);
- the supervisor starts the rank again and the group re-forms within seconds (the restarted rank
  takes over its dead predecessor's claim at once instead of waiting for its lease), then serves
  the same greedy text as before."""
import http.client
import json
import os
import signal
import subprocess
import threading
import time

from conftest import SERVED_NAME, Server
from test_group_layouts import TOOL, complete
from test_tensor_parallel import free_port

STREAMS = 64


def local_rank_pids(supervisor_pid):
    """{local rank: pid} of a supervisor's rank processes (SHARDLM_LOCAL_RANK in their
    environment)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(supervisor_pid)], capture_output=True,
                         text=True)
    ranks = {}
    for pid in map(int, out.stdout.split()):
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        ranks[int(env[b"SHARDLM_LOCAL_RANK"])] = pid
    return ranks


def stream(server, prompt, result, started):
    """One streamed completion: appends (finish_reason, tokens received, usage, saw [DONE])."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    body = {"model": SERVED_NAME, "prompt": prompt, "max_tokens": 400, "temperature": 0,
            "ignore_eos": True, "stream": True, "logprobs": 0,
            "stream_options": {"include_usage": True}}
    conn.request("POST", "/v1/completions", json.dumps(body),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    finish, tokens, usage, done = None, 0, None, False
    for raw in response:
        line = raw.decode().strip()
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            event = json.loads(line[6:])
            usage = event.get("usage") or usage
            for choice in event.get("choices") or []:
                tokens += len((choice.get("logprobs") or {}).get("tokens") or [])
                finish = choice.get("finish_reason") or finish
                started.set()
    conn.close()
    result.append((finish, tokens, usage, done))


def test_rank_killed_mid_stream_is_named_at_once_and_the_group_re_forms(tmp_path):
    model = str(tmp_path / "tiny.gguf")
    subprocess.run([TOOL, model, "--layers", "4"], check=True)
    master = Server(["--tp", "2", "--pp", "2", "--nproc-per-node", "4", "--dist-init-addr",
                     f"127.0.0.1:{free_port()}", "--dist-step-timeout", "60",
                     "--max-num-seqs", str(STREAMS)], model=model)
    try:
        before = complete(master, "hello")
        ranks = local_rank_pids(master.proc.pid)
        assert sorted(ranks) == [0, 1, 2, 3], ranks
        time.sleep(10.5)  # only a rank that served 10 s is started again (supervisor.cpp)
        results, started = [], threading.Event()
        threads = [threading.Thread(target=stream, args=(master, f"prompt {i}", results, started))
                   for i in range(STREAMS)]
        for t in threads:
            t.start()
        assert started.wait(60), master.text()
        time.sleep(0.5)
        os.kill(ranks[1], signal.SIGKILL)  # the master's TP peer
        killed = time.monotonic()
        for t in threads:
            t.join(120)
        assert len(results) == STREAMS, f"{len(results)} of {STREAMS} streams ended"
        for finish, tokens, usage, done in results:
            assert done and finish == "abort", (finish, tokens, usage, done)
            assert usage and usage["completion_tokens"] == tokens, (tokens, usage)
        assert any(tokens > 0 for _, tokens, _, _ in results)

        while "the group re-formed" not in master.text():
            assert time.monotonic() - killed < 30, master.text()
            time.sleep(0.2)
        text = master.text()
        # The master names its dead TP peer at once: at the shared-memory all-reduce's barrier, or,
        # when the kill lands while rank 0 is sending to the next stage, as the rank that stopped
        # answering there (both race for the first word; either is in the log within the 30 s).
        assert (f"rank 1 of 2 (pid {ranks[1]}) exited while rank 0 waited" in text
                or "not answering: rank 1 on " in text), text
        assert "waited 60000 ms" not in text, text
        assert f"rank 1: taking over the rank from pid {ranks[1]}, which ended" in text, text
        assert complete(master, "hello") == before
    finally:
        assert master.stop() == 0, master.text()
