"""`shardlm doctor` on loopback and across two network namespaces: a healthy group gets a verdict
of ok with all-reduce and link figures; a rank that never arrives, a different model, and a node
whose collective interface the others cannot reach (GLOO_SOCKET_IFNAME=lo on the second
namespace: the classic interface trap) each get NOT READY naming the rank and the cause, with exit
status 1 on every node, within seconds."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import BINARY
from test_group_layouts import TOOL, tiny  # noqa: F401 (fixture)
from test_tensor_parallel import free_port
from test_two_hosts import ADDR, NS, in_ns, two_hosts  # noqa: F401 (fixture)


needs_iptables = pytest.mark.skipif(shutil.which("iptables") is None,
                                    reason="needs iptables (scripts/install_deps.sh installs it)")


def doctor(args, env=None, ns=None):
    cmd = [BINARY, "doctor", *args]
    kw = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
              env={**os.environ, **(env or {})})
    return in_ns(ns, cmd, **kw) if ns else subprocess.Popen(cmd, **kw)


def group(n, port, model, extra=(), models=None):
    procs = [doctor(["--model", (models or {}).get(r, model), "--tp", str(n), "--nnodes", str(n),
                     "--node-rank", str(r), "--dist-init-addr", f"127.0.0.1:{port}", *extra])
             for r in range(n)]
    return [p.communicate(timeout=60)[0] for p in procs], [p.returncode for p in procs]


def test_healthy_group(tiny):
    began = time.monotonic()
    outs, rcs = group(2, free_port(), tiny)
    assert rcs == [0, 0], outs
    assert time.monotonic() - began < 15
    for out in outs:
        assert "verdict: ok, all 2 ranks ready" in out, out
        assert "all-reduce over 2 ranks" in out and "GB/s busbw" in out
        assert "TP all-reduce: shared memory (every rank on this host)" in out, out
        assert "link rank 0 <-> rank 1: latency" in out


def test_missing_rank(tiny):
    p = doctor(["--model", tiny, "--pp", "2", "--nnodes", "2", "--node-rank", "0",
                "--dist-init-addr", f"127.0.0.1:{free_port()}", "--dist-timeout", "2"])
    out = p.communicate(timeout=60)[0]
    assert p.returncode == 1, out
    assert "did not arrive within 2 s" in out and "NOT READY, 1 of 2 ranks ready" in out, out


def test_model_mismatch(tiny, tmp_path):
    other = str(tmp_path / "other.gguf")
    subprocess.run([TOOL, other, "--layers", "3"], check=True)
    outs, rcs = group(2, free_port(), tiny, models={1: other})
    assert rcs == [1, 1], outs
    assert "model fingerprint" in outs[0] and "differs from the master's" in outs[0], outs[0]


def test_unreachable_interface_is_named(two_hosts, tiny):  # noqa: F811
    args = ["--model", tiny, "--pp", "2", "--ips", ",".join(ADDR), "--dist-timeout", "20",
            "--cluster-token", "doctor-secret",
            "--dist-init-addr", f"{ADDR[0]}:29556"]
    ok = [doctor(args, ns=ns) for ns in NS]
    outs = [p.communicate(timeout=60)[0] for p in ok]
    assert [p.returncode for p in ok] == [0, 0], outs
    assert ADDR[1] in outs[0] and "verdict: ok" in outs[0]

    bad = [doctor(args, ns=NS[0]), doctor(args, env={"GLOO_SOCKET_IFNAME": "lo"}, ns=NS[1])]
    outs = [p.communicate(timeout=60)[0] for p in bad]
    assert [p.returncode for p in bad] == [1, 1], outs
    for out in outs:
        assert "NOT READY, 1 of 2 ranks ready" in out, out
        assert "not reachable at 127.0.0.1" in out and "(lo) from rank 0" in out, out
        assert "GLOO_SOCKET_IFNAME" in out


@needs_iptables
def test_firewall_is_named_as_a_firewall(two_hosts, tiny):  # noqa: F811
    # The rendezvous port is open; every other new connection into the second host is dropped.
    subprocess.run(["ip", "netns", "exec", NS[1], "iptables", "-A", "INPUT", "-p", "tcp", "!",
                    "-s", ADDR[1], "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"],
                   check=True)
    args = ["--model", tiny, "--pp", "2", "--ips", ",".join(ADDR), "--dist-timeout", "20",
            "--cluster-token", "doctor-secret", "--dist-init-addr", f"{ADDR[0]}:29556"]
    procs = [doctor(args, ns=ns) for ns in NS]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [1, 1], outs
    assert "the packets are dropped, as a firewall's DROP rule does" in outs[0], outs[0]


def test_small_shm_is_named(tiny):
    # A container's 64 MiB /dev/shm (NCCL keeps its intra-node buffers there): a mount namespace
    # with its own small tmpfs on /dev/shm for rank 1.
    port = free_port()
    args = ["--model", tiny, "--pp", "2", "--nnodes", "2", "--dist-init-addr",
            f"127.0.0.1:{port}"]
    small = subprocess.Popen(["unshare", "-m", "sh", "-c",
                              "mount -t tmpfs -o size=64m tmpfs /dev/shm && exec \"$@\"", "sh",
                              BINARY, "doctor", *args, "--node-rank", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    master = doctor([*args, "--node-rank", "0"])
    outs = [p.communicate(timeout=60)[0] for p in (master, small)]
    row = [l for l in outs[0].splitlines() if l.startswith("1 ")]
    assert row and "64 MiB" in row[0] and "warning: small /dev/shm" in row[0], outs


def test_missing_rank_is_named_within_30_s_by_default(tiny):
    began = time.monotonic()
    p = doctor(["--model", tiny, "--pp", "2", "--nnodes", "2", "--node-rank", "0",
                "--dist-init-addr", f"127.0.0.1:{free_port()}"])
    out = p.communicate(timeout=60)[0]
    assert p.returncode == 1 and "did not arrive within 20 s" in out, out
    assert time.monotonic() - began < 30
