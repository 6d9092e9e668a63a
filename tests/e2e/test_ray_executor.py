"""The Ray executor (vLLM's --distributed-executor-backend ray) on a real Ray cluster: a head
(`ray start --head`) and a second node (`ray start --address=HEAD:6379`), each in its own network
namespace with 3 CPUs. `shardlm serve --distributed-executor-backend ray --tp 3 --pp 2` on the
head places the 6 ranks over both nodes, answers a chat completion through the head, holds the
6 CPUs in `ray status` and frees them when stopped; a worker node killed -> 503 naming it; too
few CPUs, or no ray package / cluster -> a clear error within seconds, leaving nothing behind."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import BINARY, MODEL, SERVED_NAME, STARTED, kill_tree
from python_api import python_env
from test_python_api import cli_greedy
from test_two_hosts import ADDR, NS, http_in_ns, two_hosts  # noqa: F401 (the fixture)

RAY = os.path.join(os.path.dirname(sys.executable), "ray")
HEAD = f"{ADDR[0]}:6379"


def ray_env():
    return python_env(RAY_USAGE_STATS_ENABLED="0", SHARDLM_PYTHON=sys.executable,
                      RAY_ADDRESS=HEAD)


def start_node(ns, args, log):
    p = subprocess.Popen(["ip", "netns", "exec", ns, RAY, "start", "--block", "--num-cpus", "3",
                          "--num-gpus", "0", "--disable-usage-stats", *args], env=ray_env(),
                         stdout=log, stderr=subprocess.STDOUT)
    STARTED.append(p)
    return p


def ray_status():
    out = subprocess.run(["ip", "netns", "exec", NS[0], RAY, "status", "--address", HEAD],
                         env=ray_env(), capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def cpu_usage():
    """(used, total) CPUs as `ray status` reports them, or None before the cluster answers."""
    m = re.search(r"([\d.]+)/([\d.]+) CPU", ray_status())
    return (float(m.group(1)), float(m.group(2))) if m else None


def wait_for(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def ray_cluster(two_hosts, tmp_path):  # noqa: F811
    log = open(tmp_path / "ray.log", "w+")
    head = start_node(NS[0], ["--head", "--node-ip-address", ADDR[0], "--port", "6379",
                              "--include-dashboard=false", "--temp-dir", f"/tmp/rh{os.getpid()}a"],
                      log)
    wait_for("the Ray head", lambda: cpu_usage() == (0.0, 3.0))
    worker = start_node(NS[1], ["--address", HEAD, "--node-ip-address", ADDR[1],
                                "--temp-dir", f"/tmp/rh{os.getpid()}b"], log)
    wait_for("the second Ray node", lambda: cpu_usage() == (0.0, 6.0))
    yield head, worker
    for p in (worker, head):
        kill_tree(p)
    log.close()
    for node in "ab":
        shutil.rmtree(f"/tmp/rh{os.getpid()}{node}", ignore_errors=True)


def serve(extra=(), env=None):
    args = [BINARY, "serve", "--distributed-executor-backend", "ray", "--model", MODEL,
            "--threads", "1", "--device", "cpu", "--host", ADDR[0], "--port", "8000",
            "--served-model-name", SERVED_NAME, "--log-interval", "0", "--dist-step-timeout", "5",
            *extra]
    p = subprocess.Popen(["ip", "netns", "exec", NS[0], *args], env=env or ray_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    STARTED.append(p)
    return p


def wait_serving(proc):
    def up():
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        try:
            return http_in_ns(NS[0], "GET", f"http://{ADDR[0]}:8000/v1/models")[0] == 200
        except (subprocess.CalledProcessError, ValueError):
            return False
    wait_for("the master's API", up, timeout=120)


def chat():
    return http_in_ns(NS[0], "POST", f"http://{ADDR[0]}:8000/v1/chat/completions", {
        "model": SERVED_NAME, "max_tokens": 12, "temperature": 0,
        "messages": [{"role": "user", "content": "Say hello."}]})


def test_ray_places_ranks_serves_and_frees_them(ray_cluster):
    head, worker = ray_cluster
    proc = serve(["--tp", "3", "--pp", "2"])
    try:
        wait_serving(proc)
        status, body = chat()
        assert status == 200 and body["choices"][0]["message"]["content"], body
        # One bundle per rank, on both nodes. `ray status` reports usage a few seconds late (it
        # read 0 of 6 just after the first answer, 6 of 6 eight seconds later): wait for it.
        wait_for("the ranks' bundles in `ray status`", lambda: cpu_usage() == (6.0, 6.0),
                 timeout=30)
        proc.send_signal(signal.SIGTERM)  # to the driver: the master drains and ends the group
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    assert proc.returncode == 0, out[-4000:]
    assert f"{ADDR[0]}: ranks 0,1,2; {ADDR[1]}: ranks 3,4,5" in out, out[-4000:]
    wait_for("the resources to be free", lambda: cpu_usage() == (0.0, 6.0), timeout=30)

    # A Ray node dies: its ranks die with it, the master names them in /health and 503s.
    proc = serve(["--tp", "3", "--pp", "2"])
    try:
        wait_serving(proc)
        kill_tree(worker)
        lost = time.monotonic()

        def reported():
            try:
                status, body = http_in_ns(NS[0], "GET", f"http://{ADDR[0]}:8000/health")
            except ValueError:  # 200 with an empty body: healthy still
                return None
            return (status, body) if status == 503 else None
        try:
            status, body = wait_for("503 on /health", reported, timeout=30)
        except AssertionError:
            ps = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True,
                                text=True).stdout
            kill_tree(proc)
            raise AssertionError("no 503 after the node was lost:\n" + proc.communicate()[0][-6000:]
                                 + "\n" + "\n".join(l for l in ps.splitlines() if "shardlm" in l
                                                      or "ray" in l))
        assert time.monotonic() - lost < 30
        text = json.dumps(body)
        assert ADDR[1] in text and "rank" in text, body
        status, body = chat()
        assert status == 503, body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                kill_tree(proc)
    wait_for("the head's resources to be free", lambda: cpu_usage() == (0.0, 3.0), timeout=30)


def test_too_few_cpus_is_named_and_leaves_nothing(ray_cluster):
    start = time.monotonic()
    proc = serve(["--tp", "3", "--pp", "3"])
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1 and time.monotonic() - start < 30, out[-3000:]
    assert "6 CPUs on 2 node(s)" in out and "9 ranks need 9" in out, out[-3000:]
    assert "ray start --address" in out
    assert cpu_usage() == (0.0, 6.0)


def test_no_ray_package_or_cluster_is_a_clear_error(two_hosts):  # noqa: F811
    no_package = dict(ray_env(), SHARDLM_PYTHON="/usr/bin/python3")
    start = time.monotonic()
    proc = serve(["--tp", "3"], env=no_package)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1 and "pip install 'ray[default]'" in out, out[-3000:]
    proc = serve(["--tp", "3"])  # the package, but no cluster at HEAD
    out = proc.communicate(timeout=90)[0]
    assert proc.returncode == 1 and "no Ray cluster is reachable" in out, out[-3000:]
    assert "ray start --head" in out
    assert time.monotonic() - start < 60


PY_RAY = r"""
import json, sys
from shardlm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], tensor_parallel_size=3, pipeline_parallel_size=2, threads=1,
          device="cpu", distributed_executor_backend="ray")
out = [o.outputs[0].text for o in llm.generate(json.loads(sys.argv[2]), SamplingParams(
    temperature=0, max_tokens=24, ignore_eos=True), use_tqdm=False)]
llm.shutdown()
print(json.dumps(out))
"""


def test_llm_with_the_ray_executor_from_python(ray_cluster):
    prompts = ["The capital of France is", "1, 2, 3, 4,"]
    single = cli_greedy(prompts)
    p = subprocess.run(["ip", "netns", "exec", NS[0], sys.executable, "-c", PY_RAY, MODEL,
                        json.dumps(prompts)], env=ray_env(), capture_output=True, text=True,
                       timeout=240)
    assert p.returncode == 0, p.stderr[-4000:]
    texts = json.loads(p.stdout.splitlines()[-1])
    assert texts == single
    assert f"{ADDR[0]}: ranks 0,1,2; {ADDR[1]}: ranks 3,4,5" in p.stderr, p.stderr[-3000:]
    wait_for("the resources to be free", lambda: cpu_usage() == (0.0, 6.0), timeout=30)
