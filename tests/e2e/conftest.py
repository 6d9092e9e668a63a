"""Fixtures of the end-to-end tests: a real `shardlm serve` on the default model, started on a free
loopback port and stopped (SIGTERM, exit status checked) when the module's tests are done."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

BINARY = os.environ.get("SHARDLM_BINARY", "build/shardlm")
MODEL = os.environ.get("SHARDLM_MODEL") or os.path.expanduser(
    "~/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf")
SERVED_NAME = "smollm2"


class Server:
    def __init__(self, extra_args=(), threads=1, model=None, command=None, env=None,
                 served_name=SERVED_NAME):
        """`command` replaces the leading `shardlm serve` (e.g. an mpirun line); served_name None
        leaves --served-model-name out."""
        self.log_path = f"/tmp/shardlm-e2e-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")
        named = [] if "--served-model-name" in extra_args or served_name is None else [
            "--served-model-name", served_name]
        args = [*(command or [BINARY, "serve"]), "--model", model or MODEL, "--port", "0",
                "--threads", str(threads), *named, "--log-interval", "1", *extra_args]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.port = self._wait_for_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = self.base_url

    def _wait_for_port(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shardlm serve exited {self.proc.returncode}:\n{self.text()}")
            m = re.search(r"on http://127\.0\.0\.1:(\d+) ", self.text())
            if m:
                return int(m.group(1))
            time.sleep(0.05)
        raise RuntimeError(f"shardlm serve did not start:\n{self.text()}")

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def get(self, path, url=None):
        with urllib.request.urlopen((url or self.base_url) + path, timeout=30) as r:
            return r.status, r.read().decode()

    def post(self, path, body, headers=None):
        """Returns (status, parsed JSON body) for any status."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def metrics(self):
        """The Prometheus text as {name{labels}: value}."""
        _, text = self.get("/metrics", self.metrics_url)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def metric(self, name, **labels):
        total = 0.0
        for key, value in self.metrics().items():
            if key.split("{")[0] == name and all(f'{k}="{v}"' in key for k, v in labels.items()):
                total += value
        return total

    def tokenize(self, text, add_special_tokens=True):
        status, body = self.post("/tokenize", {"prompt": text,
                                                "add_special_tokens": add_special_tokens})
        assert status == 200, body
        return body["tokens"]

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.log.close()
        return rc


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    rc = s.stop()
    assert rc == 0, s.text()


@pytest.fixture(scope="module")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0,
                         timeout=120)


def descendants(pid):
    """Every process below `pid` (children, their children, ...)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def kill_tree(proc):
    """SIGKILL a process started by a test and everything below it, if still running."""
    for pid in [*descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


# Processes a test started (test_cluster_failures, test_launcher_stops): killed with everything
# below them after each test, so a failing test leaves nothing running.
STARTED = []


@pytest.fixture(autouse=True)
def leave_nothing_running():
    yield
    while STARTED:
        kill_tree(STARTED.pop())
