"""A group (tensor_parallel_size x pipeline_parallel_size ranks) started from Python, the way
`shardlm serve` starts one: on the master node (the first of `ips`, or this machine alone) rank 0
runs in this process and the node's other ranks are `shardlm serve` processes; on every other
node all of the node's ranks are such processes, and the script's end waits until the master
shuts the group down. The ranks find each other exactly as the CLI's do (--ips / --tp / --pp,
parallel/launch_env.h): the same script runs unchanged on every node."""
from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from . import _core
from ._paths import binary


@dataclass
class GroupSpec:
    tp: int
    pp: int
    ips: List[str]
    dist_init_addr: str
    cluster_token: str
    dist_timeout: float
    tp_exact: bool = False  # --tp-exact: exact TP instead of Megatron (every rank alike)


def parse_ips(ips) -> List[str]:
    """'ip1,ip2' or ['ip1', 'ip2'] -> ['ip1', 'ip2'] (ValueError naming ips otherwise)."""
    if ips is None:
        return []
    items = ips.split(",") if isinstance(ips, str) else list(ips)
    items = [str(i).strip() for i in items]
    if not items or any(not i for i in items):
        raise ValueError(f"ips={ips!r}: give the nodes' addresses as 'ip1,ip2,...' (the first is "
                         "the master), the same list on every node")
    return items


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Group:
    """This node's part of a group: where it sits, and the rank processes it started."""

    def __init__(self, spec: GroupSpec, rank_argv: List[str]) -> None:
        self.env: Dict[str, str] = dict(os.environ)
        if not spec.ips and not spec.dist_init_addr and "MASTER_PORT" not in self.env:
            # One machine: a free rendezvous port (two such groups side by side must not share).
            self.env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
        flags = _core.LaunchFlags()
        flags.tp, flags.pp, flags.ips = spec.tp, spec.pp, spec.ips
        flags.tp_exact = spec.tp_exact
        flags.dist_init_addr = spec.dist_init_addr
        flags.dist_timeout = spec.dist_timeout
        flags.cluster_token = spec.cluster_token or self.env.get("SHARDLM_CLUSTER_TOKEN", "")
        self.place = _core.resolve_place(flags, {**self.env, "SHARDLM_LOCAL_RANK": "0"})
        info = self.place.info
        if not flags.cluster_token and not is_loopback(info.master_host):
            raise ValueError(
                "cluster_token: a group over several hosts needs a shared secret so that no one "
                "else can join it: pass cluster_token='...' (the same on every node) or export "
                "SHARDLM_CLUSTER_TOKEN")
        if flags.cluster_token:
            self.env["SHARDLM_CLUSTER_TOKEN"] = flags.cluster_token
        self.is_master = info.node_rank == 0
        self.argv = [binary(), "serve", *rank_argv, *group_argv(spec)]
        self.procs: List[subprocess.Popen] = []
        first = 1 if self.is_master else 0
        for local_rank in range(first, info.local_world_size):
            self.procs.append(self._start(local_rank))

    def _start(self, local_rank: int) -> subprocess.Popen:
        env = dict(self.env, SHARDLM_LOCAL_RANK=str(local_rank),
                   SHARDLM_SUPERVISOR_PID=str(os.getpid()))  # they die with this process
        return subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL)

    def failed_ranks(self) -> List[str]:
        return [f"local rank {i + (1 if self.is_master else 0)} exited with status {p.returncode}"
                for i, p in enumerate(self.procs) if p.poll() not in (None, 0)]

    def wait(self, timeout: Optional[float] = None) -> int:
        """Waits for this node's rank processes to end (the master ended the group); returns the
        first non-zero exit status, or 0."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = 0
        for p in self.procs:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.1)
            try:
                rc = p.wait(left)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    rc = p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    rc = p.wait()
            status = status or rc
        self.procs = []
        return status

    def stop(self) -> None:
        """Ends this node's rank processes now (SIGTERM, then SIGKILL after 10 s)."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        self.wait(timeout=10)


def group_argv(spec: GroupSpec) -> List[str]:
    argv = ["--tp", str(spec.tp), "--pp", str(spec.pp), "--dist-timeout", str(spec.dist_timeout),
            "--port", "0", "--log-interval", "0"]
    if spec.tp_exact:
        argv.append("--tp-exact")
    if spec.ips:
        argv += ["--ips", ",".join(spec.ips)]
    if spec.dist_init_addr:
        argv += ["--dist-init-addr", spec.dist_init_addr]
    return argv


def say(message: str) -> None:
    print(f"shardlm: {message}", file=sys.stderr, flush=True)
