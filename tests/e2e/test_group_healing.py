"""A group that heals (issue 18): after a rank dies the master stays up (503 naming the dead rank
and that the group is re-forming), the surviving workers wait, and when the dead rank is started
again with its same command the group re-forms by itself -- handshake, weights check, fresh K/V
caches -- and serves the same greedy outputs as before, without restarting the master. A
restarted rank with other weights is refused and the master keeps waiting for a right one."""
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import BINARY, SERVED_NAME, Server, kill_tree
from test_group_layouts import TOOL, complete
from test_tensor_parallel import free_port

PROMPTS = ["hello world", "the quick brown fox", "once upon a time"]


@pytest.fixture(scope="module")
def three_layers(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("heal") / "three.gguf")
    subprocess.run([TOOL, path, "--layers", "3"], check=True)
    return path


def worker(model, rank, port):
    return subprocess.Popen([BINARY, "serve", "--model", model, "--port", "0", "--threads", "1",
                             "--log-interval", "0", "--pp", "3", "--nnodes", "3", "--node-rank",
                             str(rank), "--dist-init-addr", f"127.0.0.1:{port}",
                             "--dist-timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def health(server):
    """(status, body) of /health."""
    try:
        with urllib.request.urlopen(server.base_url + "/health", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_health(server, status, within=60, saying=""):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = health(server)
        if got[0] == status and (not saying or saying in json.dumps(got[1])):
            return got[1]
        time.sleep(0.2)
    raise AssertionError(f"/health did not become {status}: {health(server)}\n{server.text()}")


def test_a_restarted_rank_rejoins_and_the_group_serves_again(three_layers, tmp_path):
    port = free_port()
    workers = {r: worker(three_layers, r, port) for r in (1, 2)}
    master = Server(["--pp", "3", "--nnodes", "3", "--node-rank", "0", "--dist-init-addr",
                     f"127.0.0.1:{port}", "--dist-timeout", "60"], model=three_layers)
    started = [master.proc, *workers.values()]
    try:
        before = [complete(master, p) for p in PROMPTS]
        workers[1].send_signal(signal.SIGKILL)
        workers[1].wait()
        body = wait_health(master, 503, within=15, saying="re-forming by itself")
        message = body["error"]["message"]
        assert "rank 1" in message and "re-forming by itself" in message, message
        status, body = master.post("/v1/completions", {"model": SERVED_NAME, "prompt": "hi"})
        assert status == 503 and "re-forming" in body["error"]["message"], body
        assert workers[2].poll() is None, "the surviving worker exited"

        # A replacement with other weights is refused; the master keeps waiting.
        other = tmp_path / "other.gguf"
        data = bytearray(open(three_layers, "rb").read())
        data[len(data) // 2:len(data) // 2 + 4096] = bytes(4096)  # other bytes, same tensors
        other.write_bytes(bytes(data))
        other = str(other)
        wrong = worker(other, 1, port)
        started.append(wrong)
        out, _ = wrong.communicate(timeout=60)
        assert wrong.returncode == 1 and "the master refused this rank" in out, out
        assert "different bytes" in out or "models differ" in out, out
        assert health(master)[0] == 503

        # The same command again: the group re-forms and answers as before.
        workers[1] = worker(three_layers, 1, port)
        started.append(workers[1])
        wait_health(master, 200)
        assert [complete(master, p) for p in PROMPTS] == before
        text = master.text()
        assert "re-forming the group as generation 1" in text, text
        assert "the group re-formed (epoch 1)" in text, text
    finally:
        assert master.stop() == 0, master.text()
        for w in workers.values():
            try:
                out, _ = w.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                kill_tree(w)
                raise
            assert w.returncode == 0, out
        for p in started:
            kill_tree(p)
