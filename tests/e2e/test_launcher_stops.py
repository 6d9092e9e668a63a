"""Stopping a group the way each launcher does (issue 18): Ctrl-C in a terminal (SIGINT to the
whole process group: supervisor, master and workers at once), mpirun's Ctrl-C, a repeated
Ctrl-C, and a supervisor killed outright. Streams in flight finish (drain) instead of being cut;
every process ends, with a status that says what happened."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import BINARY, MODEL, SERVED_NAME, STARTED
from test_group_layouts import child_pids, tiny  # noqa: F401 (fixture)
from test_tensor_parallel import free_port


def start(args, command=None):
    """A server in its own session (its own process group, as a terminal's foreground job)."""
    log = open(f"/tmp/shardlm-stop-{os.getpid()}-{time.monotonic_ns()}.log", "w+")
    proc = subprocess.Popen([*(command or [BINARY, "serve"]), "--port", "0", "--threads", "1",
                             "--served-model-name", SERVED_NAME, "--log-interval", "0", *args],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    STARTED.append(proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = open(log.name).read()
        if "(OpenAI API under /v1)" in text:
            port = int(text.split("on http://127.0.0.1:")[1].split(" ")[0])
            return proc, log.name, port
        assert proc.poll() is None, text
        time.sleep(0.05)
    raise AssertionError(open(log.name).read())


class Stream(threading.Thread):
    """One streamed completion; `lines` fills as the server writes."""

    def __init__(self, port, max_tokens):
        super().__init__(daemon=True)
        self.port, self.max_tokens, self.lines, self.error = port, max_tokens, [], None
        self.start()

    def run(self):
        body = {"model": SERVED_NAME, "prompt": "Tell me a long story.", "stream": True,
                "max_tokens": self.max_tokens, "temperature": 0, "ignore_eos": True}
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/completions",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                for line in r:
                    self.lines.append(line.decode().strip())
        except Exception as e:  # noqa: BLE001 (the assertion below shows it)
            self.error = e

    def wait_first_token(self):
        deadline = time.monotonic() + 30
        while not any(l.startswith("data: {") for l in self.lines):
            assert time.monotonic() < deadline and self.error is None, self.error
            time.sleep(0.01)

    def finish_reason(self):
        self.join(60)
        assert self.error is None, self.error
        data = [l for l in self.lines if l.startswith("data: ")]
        assert data and data[-1] == "data: [DONE]", self.lines[-3:]
        return json.loads(data[-2][len("data: "):])["choices"][0]["finish_reason"]


def gone(pids, within=15):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [p for p in pids if os.path.exists(f"/proc/{p}")
                 and open(f"/proc/{p}/stat").read().split()[2] != "Z"]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_terminal_ctrl_c_drains_a_supervised_node():
    proc, log, port = start(["--model", MODEL, "--pp", "2", "--nproc-per-node", "2",
                             "--dist-init-addr", f"127.0.0.1:{free_port()}",
                             "--shutdown-grace", "60"])
    ranks = child_pids(proc.pid)
    stream = Stream(port, 400)
    stream.wait_first_token()
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: every process of the group
    at_signal = len(stream.lines)
    assert stream.finish_reason() == "length", open(log).read()
    assert len(stream.lines) > at_signal + 10  # it went on after the signal: a drain
    assert proc.wait(timeout=60) == 0, open(log).read()
    text = open(log).read()
    assert "rank 1: SIGINT received; the master drains" in text
    assert "the master shut the group down" in text
    assert gone(ranks)


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs openmpi-bin")
def test_mpirun_sigusr1_drains():
    # mpirun answers Ctrl-C itself (SIGCONT, SIGTERM, SIGKILL a second apart: no time to drain)
    # but forwards SIGUSR1 to every rank: the graceful stop of an mpirun group, which the
    # master's start-up log points to.
    mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", BINARY, "serve"]
    proc, log, port = start(["--model", MODEL, "--pp", "2", "--dist-init-addr",
                             f"127.0.0.1:{free_port()}", "--shutdown-grace", "60"],
                            command=mpirun)
    assert "send SIGUSR1 to mpirun" in open(log).read()
    stream = Stream(port, 400)
    stream.wait_first_token()
    proc.send_signal(signal.SIGUSR1)
    at_signal = len(stream.lines)
    assert stream.finish_reason() == "length", open(log).read()
    assert len(stream.lines) > at_signal + 10
    assert proc.wait(timeout=60) == 0, open(log).read()
    assert "the master shut the group down" in open(log).read()


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs openmpi-bin")
def test_mpirun_ctrl_c_leaves_nothing_running(tiny):
    mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", BINARY, "serve"]
    proc, log, port = start(["--model", tiny, "--pp", "2", "--dist-init-addr",
                             f"127.0.0.1:{free_port()}"], command=mpirun)
    ranks = child_pids(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    assert gone(ranks), open(log).read()


def test_second_ctrl_c_aborts_in_order():
    proc, log, port = start(["--model", MODEL, "--shutdown-grace", "60", "--max-model-len",
                             "4096"])
    stream = Stream(port, 4000)
    stream.wait_first_token()
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)  # the same Ctrl-C twice (terminal + a forward): still drains
    time.sleep(2.5)
    assert proc.poll() is None and stream.is_alive(), open(log).read()
    proc.send_signal(signal.SIGINT)  # a real second Ctrl-C: stop now, but in order
    assert stream.finish_reason() == "abort"
    assert proc.wait(timeout=30) == 0, open(log).read()
    assert "SIGINT again: not waiting for the rest" in open(log).read()


def test_killed_supervisor_takes_its_ranks_down(tiny):
    proc, log, port = start(["--model", tiny, "--tp", "2", "--nproc-per-node", "2",
                             "--dist-init-addr", f"127.0.0.1:{free_port()}"])
    ranks = child_pids(proc.pid)
    assert len(ranks) == 2
    proc.kill()
    proc.wait()
    assert gone(ranks), open(log).read()
