"""The fleet across two hosts: two Linux network namespaces joined by a veth pair (created and
removed by the test; needs root). The head namespace runs etcd, NATS, one worker and the frontend
(kv routing), as docs/deployment.md's commands do on 2379/4222; the other runs a worker that
listens on 0.0.0.0 and registers the address the head can dial. Requests through the frontend
reach both workers and equal a single process's greedy output."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import BINARY, SERVED_NAME, STARTED

TOOL = os.environ.get("SHARDLM_TINY_MODEL_TOOL", "build/tests/shardlm_tiny_model")
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
NS = [f"slm-fa-{os.getpid()}", f"slm-fb-{os.getpid()}"]
ADDR = ["10.78.0.1", "10.78.0.2"]
HEAD = ADDR[0]


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def two_hosts():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and iproute2")
    if not (os.path.exists(ETCD) and os.path.exists(NATS)):
        pytest.skip("etcd-server and nats-server are not installed (scripts/install_deps.sh)")
    veth = [f"vfa{os.getpid() % 100000}", f"vfb{os.getpid() % 100000}"]
    try:
        for ns in NS:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for ns, dev, addr in zip(NS, veth, ADDR):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        yield
    finally:
        for ns in NS:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def start(ns, args, log):
    p = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=log, stderr=subprocess.STDOUT)
    STARTED.append(p)
    return p


def http(ns, url, body=None):
    """(status, body text) of a request made from inside the namespace."""
    code = ("import sys, urllib.request\n"
            "req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode() or None,"
            " headers={'Content-Type': 'application/json'})\n"
            "try:\n"
            "    r = urllib.request.urlopen(req, timeout=60); print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code); print(e.read().decode())\n"
            "except OSError as e:\n"
            "    print(0); print(e)\n")
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, url,
                          json.dumps(body) if body is not None else ""],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    status, text = out.split("\n", 1)
    return int(status), text


def wait_for(cond, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def complete(ns, base, prompt):
    status, text = http(ns, base + "/v1/completions", {
        "model": SERVED_NAME, "prompt": prompt, "max_tokens": 8, "temperature": 0,
        "ignore_eos": True})
    assert status == 200, text
    return json.loads(text)["choices"][0]["text"]


def head_services(tmp_path):
    """Writes the tiny model and starts etcd (:2379) and NATS (:4222) on the head; returns the
    model's path and the log file for the fleet's processes."""
    model = str(tmp_path / "tiny.gguf")
    subprocess.run([TOOL, model, "--layers", "2"], check=True)
    log = open(tmp_path / "fleet.log", "w+")
    start(NS[0], [ETCD, "--data-dir", str(tmp_path / "etcd"), "--listen-client-urls",
                  f"http://{HEAD}:2379", "--advertise-client-urls", f"http://{HEAD}:2379",
                  "--listen-peer-urls", f"http://{HEAD}:2380", "--initial-advertise-peer-urls",
                  f"http://{HEAD}:2380", "--initial-cluster", f"default=http://{HEAD}:2380"],
          subprocess.DEVNULL)
    start(NS[0], [NATS, "-a", HEAD, "-p", "4222"], subprocess.DEVNULL)
    wait_for(lambda: http(NS[1], f"http://{HEAD}:2379/version")[0] == 200, what="etcd")
    return model, log


def test_fleet_over_two_hosts(two_hosts, tmp_path):
    model, log = head_services(tmp_path)
    serve = [BINARY, "serve", "--model", model, "--threads", "1", "--served-model-name",
             SERVED_NAME, "--log-interval", "0", "--port", "8001", "--etcd-endpoints",
             f"{HEAD}:2379", "--nats-server", f"nats://{HEAD}:4222"]
    start(NS[0], [*serve, "--host", HEAD], log)
    start(NS[1], [*serve, "--host", "0.0.0.0"], log)  # registers 10.78.0.2, its own address
    start(NS[0], [BINARY, "frontend", "--router-mode", "round-robin", "--host", HEAD, "--port",
                  "8000", "--etcd-endpoints", f"{HEAD}:2379", "--nats-server",
                  f"nats://{HEAD}:4222"], log)
    base = f"http://{HEAD}:8000"

    def workers():
        status, text = http(NS[0], base + "/health")
        return json.loads(text).get("workers") if status in (200, 503) else None

    wait_for(lambda: workers() == 2, what="two workers registered")
    prompts = [f"host test {i}" for i in range(6)]
    expected = [complete(NS[0], f"http://{HEAD}:8001", p) for p in prompts]
    assert [complete(NS[1], base, p) for p in prompts] == expected  # a client on the other host
    _, metrics = http(NS[0], base + "/metrics")
    per_worker = re.findall(r'shardlm:frontend_requests_total\{[^}]*\} (\d+)', metrics)
    assert sorted(map(int, per_worker)) == [3, 3], metrics
    doctor = subprocess.run(["ip", "netns", "exec", NS[1], BINARY, "doctor", "--etcd-endpoints",
                             f"{HEAD}:2379", "--nats-server", f"nats://{HEAD}:4222"],
                            capture_output=True, text=True, timeout=60)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "http://10.78.0.1:8001" in doctor.stdout and "http://10.78.0.2:8001" in doctor.stdout
    assert doctor.stdout.count(": healthy") == 2, doctor.stdout
