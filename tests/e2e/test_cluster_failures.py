"""Every start-up failure of a group is named within seconds on every rank, with the node and the
cause, and no process stays behind (issue 18): the master never started, the rendezvous port
dropped by a firewall, a collective interface the other host cannot reach, collective ports
dropped, an extra rank, a different build, weights that differ inside one tensor, a worker whose
step token limit is below the master's, a layout one node refuses and a duplicate rank (a rank restarted after the group formed rejoins it:
test_group_healing.py). Two-host cases
run in two network namespaces joined by a veth pair (test_two_hosts's fixture; needs root)."""
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import BINARY, MODEL, STARTED
from test_group_layouts import TOOL, tiny  # noqa: F401 (fixture)
from test_tensor_parallel import free_port
from test_two_hosts import ADDR, NS, in_ns, two_hosts  # noqa: F401 (fixture)

RANK_PORT = 29555  # the two-host tests' rendezvous port


needs_iptables = pytest.mark.skipif(shutil.which("iptables") is None,
                                    reason="needs iptables (scripts/install_deps.sh installs it)")


def serve(model, rank, port, *extra, nnodes=2, host="127.0.0.1", binary=BINARY, ns=None,
          env=None, layout=("--pp", "2"), token="e2e-secret"):
    cmd = [binary, "serve", "--model", model, "--port", "0", "--threads", "1", "--log-interval",
           "0", *layout, "--nnodes", str(nnodes), "--node-rank", str(rank), "--dist-init-addr",
           f"{host}:{port}", *(["--cluster-token", token] if token else []), *extra]
    kw = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
              env={**os.environ, **(env or {})})
    proc = in_ns(ns, cmd, **kw) if ns else subprocess.Popen(cmd, **kw)
    STARTED.append(proc)
    return proc


def outcome(procs, timeout=60):
    """(outputs, exit statuses, seconds until the last exited) of processes started just now."""
    began = time.monotonic()
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    return outs, [p.returncode for p in procs], time.monotonic() - began


def test_master_not_started_is_named():
    (out,), (rc,), took = outcome([serve(MODEL, 1, free_port(), "--dist-timeout", "3")])
    assert rc == 1 and "nothing listens there: the master node is not started" in out, out
    assert took < 15


@needs_iptables
def test_blocked_rendezvous_port_is_named_on_both_hosts(two_hosts):
    subprocess.run(["ip", "netns", "exec", NS[0], "iptables", "-A", "INPUT", "-p", "tcp",
                    "--dport", str(RANK_PORT), "!", "-s", ADDR[0], "-j", "DROP"], check=True)
    procs = [serve(MODEL, r, RANK_PORT, "--dist-timeout", "5", "--host", ADDR[r],
                   host=ADDR[0], ns=NS[r]) for r in (0, 1)]
    outs, rcs, took = outcome(procs)
    assert rcs == [1, 1], outs
    assert "no answer at all: a firewall drops the port" in outs[1], outs[1]
    assert "rank(s) 1 of 2 never reached the rendezvous" in outs[0], outs[0]
    assert "firewall" in outs[0]
    assert took < 30


def test_loopback_collective_interface_is_named(two_hosts):
    env = {"GLOO_SOCKET_IFNAME": "lo"}
    procs = [serve(MODEL, r, RANK_PORT, "--dist-timeout", "8", "--host", ADDR[r], host=ADDR[0],
                   ns=NS[r], env=env) for r in (0, 1)]
    outs, rcs, took = outcome(procs)
    assert rcs == [1, 1], outs
    for out in outs:  # Gloo fails at once (refused) or hangs until the watchdog: either way named
        assert "GLOO_SOCKET_IFNAME=lo is the loopback interface" in out, out
    assert took < 30


@needs_iptables
def test_collective_ports_dropped_are_named(two_hosts):
    # The rendezvous gets through; every other new connection between the hosts (Gloo's) is
    # dropped.
    for ns, me in zip(NS, ADDR):
        subprocess.run(["ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "tcp", "!",
                        "--dport", str(RANK_PORT), "!", "-s", me, "-m", "conntrack",
                        "--ctstate", "NEW", "-j", "DROP"], check=True)
    procs = [serve(MODEL, r, RANK_PORT, "--dist-timeout", "8", "--host", ADDR[r], host=ADDR[0],
                   ns=NS[r]) for r in (0, 1)]
    outs, rcs, took = outcome(procs)
    assert rcs == [1, 1], outs
    for out in outs:
        assert "connecting the collectives" in out and "firewall drops the collective ports" in out
    assert took < 30


def test_extra_rank_is_named(tiny):
    port = free_port()
    master = serve(tiny, 0, port, "--dist-timeout", "60")
    extra = serve(tiny, 2, port, "--dist-timeout", "60", nnodes=3)
    outs, rcs, took = outcome([master, extra])
    assert rcs == [1, 1], outs
    assert "this node's layout is tp 1 x pp 2 = 3 ranks on 3 node(s)" in outs[1], outs[1]
    assert "tried to join as rank 2, which this group of 2 ranks does not have" in outs[0], outs[0]
    assert took < 20  # not the 60 s start-up timeout


def patched_build(tmp_path):
    """A copy of the binary whose embedded commit differs: a build of another commit."""
    version = subprocess.run([BINARY, "--version"], capture_output=True, text=True).stdout
    commit = re.search(r"\(commit ([^)]+)\)", version).group(1).encode()
    other = bytes(reversed(commit)) if commit != bytes(reversed(commit)) else b"x" * len(commit)
    data = open(BINARY, "rb").read()
    assert data.count(commit) >= 1
    path = tmp_path / "shardlm-other"
    path.write_bytes(data.replace(commit, other))
    path.chmod(0o755)
    return str(path), other.decode()


def test_build_mismatch_is_named(tiny, tmp_path):
    binary, other = patched_build(tmp_path)
    port = free_port()
    master = serve(tiny, 0, port, "--dist-timeout", "60")
    worker = serve(tiny, 1, port, "--dist-timeout", "60", binary=binary)
    outs, rcs, took = outcome([master, worker])
    assert rcs == [1, 1], outs
    assert f"this node runs shardlm 0.1.0 (commit {other})" in outs[1], outs[1]
    assert "run the same build (the same commit) on every node" in outs[1]
    assert "rank 1 on" in outs[0] and "cannot start" in outs[0] and other in outs[0], outs[0]
    assert took < 20


def test_a_worker_with_a_smaller_step_limit_is_named(tiny):
    """Each rank resolves --max-num-batched-tokens from its own device (a GPU master and a CPU
    worker default to 8192 and 512): a worker that cannot take the master's steps is refused at
    start-up with the flag named, instead of failing on its first large step."""
    port = free_port()
    master = serve(tiny, 0, port, "--dist-timeout", "60", "--max-num-batched-tokens", "1024")
    worker = serve(tiny, 1, port, "--dist-timeout", "60", "--max-num-batched-tokens", "512")
    outs, rcs, took = outcome([master, worker])
    assert rcs == [1, 1], outs
    assert "rank 1 on" in outs[0] and "--max-num-batched-tokens" in outs[0], outs[0]
    assert "steps of up to 1024 tokens, this rank takes at most 512" in outs[0], outs[0]
    assert "the master stopped the group" in outs[1] and "--max-num-batched-tokens" in outs[1]
    assert took < 20


def test_weights_changed_inside_a_tensor_are_refused(tiny, tmp_path):
    changed = tmp_path / "changed.gguf"
    data = bytearray(open(tiny, "rb").read())
    middle = len(data) // 2
    size = min(64 * 1024, len(data) // 8)
    data[middle:middle + size] = bytes(b ^ 0x5A for b in data[middle:middle + size])
    changed.write_bytes(bytes(data))
    port = free_port()
    master = serve(tiny, 0, port, "--dist-timeout", "60")
    worker = serve(str(changed), 1, port, "--dist-timeout", "60")
    outs, rcs, took = outcome([master, worker])
    assert rcs == [1, 1], outs
    assert "the weight files hold different bytes in the same tensors" in outs[0], outs[0]
    assert "the master stopped the group" in outs[1] and "different bytes" in outs[1], outs[1]
    assert took < 20
    # doctor says the same, and --verify-weights hashes the files again.
    docs = [subprocess.Popen([BINARY, "doctor", "--model", m, "--pp", "2", "--nnodes", "2",
                              "--node-rank", str(r), "--dist-init-addr", f"127.0.0.1:{port}",
                              "--verify-weights"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for r, m in ((0, tiny), (1, str(changed)))]
    STARTED.extend(docs)
    outs, rcs, _ = outcome(docs)
    assert rcs == [1, 1], outs
    assert "every file hashed again" in outs[1]
    assert "different bytes" in outs[0], outs[0]


def test_layout_refused_by_one_node_is_named(tiny):
    port = free_port()
    master = serve(tiny, 0, port, "--dist-timeout", "60")
    worker = serve(tiny, 1, port, "--dist-timeout", "60", layout=("--tp", "2"))
    outs, rcs, took = outcome([master, worker])
    assert rcs == [1, 1], outs
    assert "this node's layout is tp 2 x pp 1" in outs[1], outs[1]
    assert "rank 1 on" in outs[0] and "cannot start: this node's layout is tp 2 x pp 1" in outs[0]
    assert took < 20


def test_duplicate_rank_is_named(tmp_path):
    # Three stages, rank 2 never started, so the group is still forming when the second rank 1
    # arrives (a duplicate that arrives after the group formed is refused, and the group serves on).
    model = str(tmp_path / "three.gguf")
    subprocess.run([TOOL, model, "--layers", "3"], check=True)
    port = free_port()
    layout = ("--pp", "3")
    master = serve(model, 0, port, "--dist-timeout", "60", nnodes=3, layout=layout)
    workers = [serve(model, 1, port, "--dist-timeout", "60", nnodes=3, layout=layout)
               for _ in range(2)]
    outs, rcs, took = outcome([master, *workers])
    assert rcs == [1, 1, 1], outs
    assert "two nodes claim rank 1" in outs[0], outs[0]
    assert len([o for o in outs[1:] if "rank 1 is already taken by" in o]) == 1, outs
    assert len([o for o in outs[1:] if "the master stopped the group: two nodes" in o]) == 1, outs
    assert took < 20


def test_group_across_hosts_gets_a_token_by_default(two_hosts, tiny):
    # Node 0 without --cluster-token generates one and prints the command for the other nodes; a
    # node without it is refused at the rendezvous, saying why; with it, the group forms.
    master = serve(tiny, 0, RANK_PORT, "--dist-timeout", "60", "--host", ADDR[0], host=ADDR[0],
                   ns=NS[0], token=None)
    bare = serve(tiny, 1, RANK_PORT, "--dist-timeout", "5", "--host", ADDR[1], host=ADDR[0],
                 ns=NS[1], token=None)
    (out,), (rc,), _ = outcome([bare])
    assert rc == 1 and "this group needs a cluster token: the master printed it" in out, out
    text = ""
    deadline = time.monotonic() + 30
    while "SHARDLM_CLUSTER_TOKEN=" not in text and time.monotonic() < deadline:
        text += os.read(master.stdout.fileno(), 65536).decode(errors="replace")
    token = re.search(r"SHARDLM_CLUSTER_TOKEN=([0-9a-f]{32}) (\S+)", text)
    assert token and "--node-rank N" in text, text
    worker = serve(tiny, 1, RANK_PORT, "--dist-timeout", "60", "--host", ADDR[1], host=ADDR[0],
                   ns=NS[1], env={"SHARDLM_CLUSTER_TOKEN": token.group(1)}, token=None)
    while "(OpenAI API under /v1)" not in text and time.monotonic() < deadline + 30:
        text += os.read(master.stdout.fileno(), 65536).decode(errors="replace")
    assert "rank 0 of 2 joined the group" in text, text
    master.terminate()
    outs, rcs, _ = outcome([master, worker])
    assert rcs == [0, 0], outs
