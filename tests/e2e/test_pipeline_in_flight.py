"""Pipeline parallelism with several steps in flight (the default for --pp > 1: vLLM's virtual
engines) through the real binary: PP=2, PP=3 and TP=2 x PP=2 answer 64 concurrent streams with the
greedy tokens of one process (--tp-exact keeps TP bit-identical), and so does one step at a time
(--pp-steps-in-flight 1); a stage killed while 32 streams run ends them within seconds with an error naming
the rank, and the group heals and answers again."""
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import SERVED_NAME, Server
from test_group_layouts import TINY_PROMPTS, TOOL, child_pids, concurrently, reference
from test_tensor_parallel import free_port


@pytest.fixture(scope="module")
def six_layers(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("pp_in_flight") / "tiny.gguf")
    subprocess.run([TOOL, path, "--layers", "6"], check=True)
    return path


def complete(server, prompt, max_tokens=12):
    status, body = server.post("/v1/completions", {"model": SERVED_NAME, "prompt": prompt,
                                                    "max_tokens": max_tokens, "temperature": 0,
                                                    "ignore_eos": True, "logprobs": 2})
    assert status == 200, body
    choice = body["choices"][0]
    return {"text": choice["text"], "tokens": choice["logprobs"]["tokens"],
            "lps": choice["logprobs"]["token_logprobs"]}


def prompts(n):
    return [f"{TINY_PROMPTS[i % len(TINY_PROMPTS)]} {i}" for i in range(n)]


def group(model, tp, pp, extra=()):
    return Server(["--tp", str(tp), "--pp", str(pp), "--nproc-per-node", str(tp * pp),
                   "--dist-init-addr", f"127.0.0.1:{free_port()}", "--dist-timeout", "60",
                   "--tp-exact", *extra], model=model)


@pytest.fixture(scope="module")
def expected64(six_layers):
    return reference(six_layers, prompts(64), complete)


@pytest.mark.parametrize("tp,pp", [(1, 2), (1, 3), (2, 2)])
def test_steps_in_flight_equal_one_process_under_64_streams(six_layers, expected64, tp, pp):
    master = group(six_layers, tp, pp)
    try:
        got = concurrently(master, prompts(64), complete, timeout=300)
        assert all(g is not None for g in got), "a stream did not answer"
        for i, (e, g) in enumerate(zip(expected64, got)):
            assert g["tokens"] == e["tokens"], (i, e["text"], g["text"])
            assert g["lps"] == e["lps"], i
        assert f"pipeline of {pp} stages: {pp} steps in flight" in master.text(), master.text()
    finally:
        assert master.stop() == 0, master.text()


def test_one_step_at_a_time_still_works(six_layers, expected64):
    master = group(six_layers, 1, 2, ["--pp-steps-in-flight", "1"])
    try:
        got = concurrently(master, prompts(32), complete, timeout=300)
        assert [g["tokens"] for g in got] == [e["tokens"] for e in expected64[:32]]
        assert "pipeline of 2 stages: 1 step in flight" in master.text(), master.text()
    finally:
        assert master.stop() == 0, master.text()


def test_a_stage_killed_under_load_is_named_and_the_group_heals(six_layers, expected64):
    """The last stage dies while 32 streams run with batches in flight: every stream ends within
    seconds (its answer, or an error naming rank 1), /health names the rank, the supervisor
    starts it again, the group re-forms and answers like one process."""
    master = group(six_layers, 1, 2)
    try:
        assert complete(master, prompts(1)[0]) == expected64[0]
        results = [None] * 32

        def ask(i):
            results[i] = master.post("/v1/completions", {
                "model": SERVED_NAME, "prompt": prompts(32)[i], "max_tokens": 400,
                "temperature": 0, "ignore_eos": True})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(32)]
        children = child_pids(master.proc.pid)
        assert len(children) == 2, children
        time.sleep(10)  # a rank that dies at once failed at start-up: only others are restarted
        for t in threads:
            t.start()
        time.sleep(1.0)
        os.kill(children[1], signal.SIGKILL)
        killed = time.monotonic()
        for t in threads:
            t.join(60)
        assert all(r is not None for r in results), "a stream hung after the stage died"
        assert time.monotonic() - killed < 30
        errors = [body for status, body in results if status != 200]
        assert errors, "no stream saw the failure"
        assert "rank 1" in str(errors[0]), errors[0]
        deadline = time.monotonic() + 60
        while "the group re-formed" not in master.text():
            assert time.monotonic() < deadline, master.text()
            time.sleep(0.2)
        assert complete(master, prompts(2)[1]) == expected64[1]
        assert master.stop() == 0, master.text()
    finally:
        master.stop()
