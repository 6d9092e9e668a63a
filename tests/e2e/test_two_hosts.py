"""Two hosts in two Linux network namespaces joined by a veth pair (created and removed by the
test; needs root): the default model in two pipeline stages, master on 10.77.0.1 and worker on
10.77.0.2, started with --nnodes/--node-rank/--dist-init-addr and again with --ips (each node
finds its rank by its own address). Greedy outputs through the master's
HTTP API equal a single process; the worker refuses generation and points to the master."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import BINARY, MODEL, SERVED_NAME, Server
from test_tensor_parallel import PROMPTS, greedy

NS = [f"slm-a-{os.getpid()}", f"slm-b-{os.getpid()}"]
ADDR = ["10.77.0.1", "10.77.0.2"]


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def two_hosts():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    veth = [f"vsa{os.getpid() % 100000}", f"vsb{os.getpid() % 100000}"]
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


def in_ns(ns, args, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns, *args], **kw)


def http_in_ns(ns, method, url, body=None):
    """(status, JSON body) of a request made from inside the namespace."""
    code = ("import json, sys, urllib.request\n"
            "req = urllib.request.Request(sys.argv[1], method=sys.argv[2],"
            " data=sys.argv[3].encode() or None, headers={'Content-Type': 'application/json'})\n"
            "try:\n"
            "    r = urllib.request.urlopen(req, timeout=60); print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code); print(e.read().decode())\n")
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, url, method,
                          json.dumps(body) if body is not None else ""],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    status, text = out.split("\n", 1)
    return int(status), json.loads(text)


GROUP_STYLES = {
    "flags": lambda r: ["--nnodes", "2", "--node-rank", str(r), "--dist-init-addr",
                        f"{ADDR[0]}:29555"],
    "ips": lambda r: ["--ips", ",".join(ADDR), "--dist-init-addr", f"{ADDR[0]}:29555"],
}


@pytest.mark.parametrize("style", ["flags", "ips"])
def test_two_hosts_pipeline(two_hosts, style):
    single = Server()
    expected = [greedy(single, p) for p in PROMPTS]
    assert single.stop() == 0
    group = ["--pp", "2", "--dist-timeout", "60", "--threads", "1", "--log-interval", "0",
             "--cluster-token", "two-hosts-secret",
             "--model", MODEL, "--served-model-name", SERVED_NAME, "--port", "8000"]
    procs = [in_ns(NS[r], [BINARY, "serve", "--host", ADDR[r], *GROUP_STYLES[style](r), *group],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (1, 0)]
    try:
        base = f"http://{ADDR[0]}:8000"
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_in_ns(NS[0], "GET", base + "/v1/models")[0] == 200:
                    break
            except (subprocess.CalledProcessError, ValueError):
                pass
            assert time.monotonic() < deadline, "the master did not come up"
            time.sleep(0.5)
        for prompt, want in zip(PROMPTS, expected):
            status, body = http_in_ns(NS[0], "POST", base + "/v1/completions", {
                "model": SERVED_NAME, "prompt": prompt, "max_tokens": 24, "temperature": 0,
                "ignore_eos": True})
            assert status == 200 and body["choices"][0]["text"] == want, body
        status, body = http_in_ns(NS[1], "POST", f"http://{ADDR[1]}:8000/v1/completions",
                                  {"prompt": "hi"})
        # The worker points at the master's API itself, not at its rendezvous port.
        assert status == 421 and f"http://{ADDR[0]}:8000" in body["error"]["message"], body
        status, body = http_in_ns(NS[1], "GET", f"http://{ADDR[1]}:8000/health")
        assert status == 200 and body["rank"] == 1
    finally:
        procs[1].terminate()  # the master: it drains and shuts the worker down
        outs = [p.communicate(timeout=60)[0] for p in procs]
    assert procs[1].returncode == 0, outs[1]
    assert procs[0].returncode == 0, outs[0]
