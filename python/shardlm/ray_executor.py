"""The Ray executor (vLLM's --distributed-executor-backend ray): `shardlm serve
--distributed-executor-backend ray --tp T --pp P` on the head of a running Ray cluster (`ray start
--head` here, `ray start --address=HEAD:PORT` on the other nodes). The binary hands its command
line to this driver, which
  1. connects to the cluster and checks that it has T x P CPUs (or GPUs with --device cuda),
  2. reserves one bundle per rank in a placement group (PACK: a node's ranks together, so TP groups
     stay within a node where they fit), rank 0 on the head,
  3. starts each rank as a `shardlm serve` process through a Ray actor in its bundle (the GPU is
     Ray's assignment: CUDA_VISIBLE_DEVICES), each rank a node of its own to shardlm
     (--nnodes T*P --node-rank R --dist-init-addr HEAD:PORT) with a shared cluster token,
  4. waits for rank 0 (the API server on the head); Ctrl-C/SIGTERM go to it (it drains and ends
     the group), and at the end the placement group is removed, freeing the resources.
A rank whose Ray node dies dies with its actor (the rank follows its actor's pid), and the master
reports it in /health and 503 bodies as with every other launch style.
Errors (no ray package, no cluster, too few CPUs/GPUs/nodes) say what is missing and how to add it,
within seconds, and leave nothing behind."""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

READY_TIMEOUT = 15.0  # seconds for the placement group to be placed


class ExecutorError(Exception):
    pass


def log(message: str) -> None:
    print(f"[ray executor] {message}", file=sys.stderr, flush=True)


def import_ray():
    try:
        import ray  # noqa: F401
        from ray.util import placement_group  # noqa: F401
    except ImportError as e:
        raise ExecutorError(
            f"--distributed-executor-backend ray needs the ray Python package ({e}) for "
            f"{sys.executable}: pip install 'ray[default]' (or pip install 'shardlm[ray]'), then "
            "start the cluster: `ray start --head` here and `ray start --address=<head>:6379` on "
            "each other node") from None
    return ray


def probe(address: str, timeout: float = 3.0) -> None:
    """Raises ExecutorError unless the head's GCS port accepts a connection (ray.init itself
    retries an unreachable address for a minute)."""
    if address in ("", "auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout).close()
    except (OSError, ValueError) as e:
        raise ExecutorError(
            f"no Ray cluster is reachable at {address!r} ({e}): start one with `ray start "
            "--head` on the head node and `ray start --address=<head ip>:6379` on each other "
            "node (`ray status` shows it), or set RAY_ADDRESS to the head's address") from None


def connect(ray, address: str) -> None:
    probe(address)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=True,
                 configure_logging=True)
    except Exception as e:  # ConnectionError, RuntimeError: no cluster there
        raise ExecutorError(
            f"no Ray cluster is reachable at {address!r} ({str(e).splitlines()[0]}): start one "
            "with `ray start --head` on this node and `ray start --address=<head ip>:6379` on "
            "each other node (`ray status` shows it), or set RAY_ADDRESS") from None


def check_resources(ray, world: int, unit: str, per_rank: float) -> List[dict]:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = sum(n["Resources"].get(unit, 0) for n in nodes)
    available = ray.available_resources().get(unit, 0)
    need = world * per_rank
    if total < need:
        raise ExecutorError(
            f"the Ray cluster has {total:g} {unit}s on {len(nodes)} node(s); --tp x --pp = "
            f"{world} ranks need {need:g} ({per_rank:g} per rank): add nodes with `ray start "
            f"--address=<head ip>:<port>` (--num-{unit.lower()}s N sets what a node offers), or "
            "lower --tp/--pp")
    if available < need:
        raise ExecutorError(
            f"the Ray cluster has {total:g} {unit}s but only {available:g} free (others are in "
            f"use, see `ray status`); {world} ranks need {need:g}")
    return nodes


def reserve(ray, world: int, bundle: Dict[str, float], head_node: str):
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.placement_group import placement_group_table
    pg = placement_group([dict(bundle) for _ in range(world)], strategy="PACK",
                         name=f"shardlm-{os.getpid()}")
    ready, _ = ray.wait([pg.ready()], timeout=READY_TIMEOUT)
    if not ready:
        remove_placement_group(pg)
        raise ExecutorError(
            f"Ray could not place {world} bundles of {bundle} within {READY_TIMEOUT:g} s (no node "
            "combination has them free; `ray status` shows what is in use): add nodes with `ray "
            "start --address=<head ip>:<port>` or lower --tp/--pp")
    nodes = placement_group_table(pg)["bundles_to_node_id"]
    order = rank_order(nodes, head_node)
    if order is None:
        remove_placement_group(pg)
        raise ExecutorError(
            f"no bundle of {bundle} was placed on the head node (rank 0 serves the API there): "
            "free resources on the head or give it more (`ray start --head --num-cpus N`)")
    return pg, order


def rank_order(bundle_nodes: Dict[int, str], head_node: str) -> Optional[List[int]]:
    """Bundle indices in rank order: the head's bundles first (rank 0 is the API server), then
    each other node's together (node-major, so consecutive ranks -- a TP group -- share a node)."""
    by_node: Dict[str, List[int]] = {}
    for index, node in sorted(bundle_nodes.items()):
        by_node.setdefault(node, []).append(index)
    if head_node not in by_node:
        return None
    order = list(by_node.pop(head_node))
    for node in sorted(by_node):
        order += by_node[node]
    return order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def rank_process_class(ray):
    @ray.remote(max_concurrency=4)
    class RankProcess:
        """Runs one rank's `shardlm serve` on its Ray node; the rank dies with this actor."""

        def __init__(self) -> None:
            self.proc: Optional[subprocess.Popen] = None

        def node(self) -> Tuple[str, str]:
            return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()

        def start(self, argv: List[str], env: Dict[str, str]) -> int:
            full = dict(os.environ, **env, SHARDLM_SUPERVISOR_PID=str(os.getpid()))
            self.proc = subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL)
            return self.proc.pid

        def wait(self) -> int:
            return self.proc.wait()

        def signal(self, sig: int) -> None:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)

    return RankProcess


def parse(argv: List[str]):
    p = argparse.ArgumentParser(prog="shardlm serve --distributed-executor-backend ray",
                                add_help=False)
    p.add_argument("--binary", required=True)
    p.add_argument("--tp", "--tensor-parallel-size", "--tensor_parallel_size", type=int, default=1)
    p.add_argument("--pp", "--pipeline-parallel-size", "--pipeline_parallel_size", type=int,
                   default=1)
    p.add_argument("--device", default="")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", default="8000")
    p.add_argument("--ray-cpus-per-rank", type=float, default=1.0)
    for flag in ("--nnodes", "--node-rank", "--nproc-per-node", "--dist-init-addr", "--ips"):
        p.add_argument(flag, help=argparse.SUPPRESS)
    known, rest = p.parse_known_args(argv)
    for flag in ("nnodes", "node_rank", "nproc_per_node", "dist_init_addr", "ips"):
        if getattr(known, flag) is not None:
            raise ExecutorError(f"--{flag.replace('_', '-')} does not go with "
                                "--distributed-executor-backend ray: Ray places the ranks")
    return known, rest


class Executor:
    """The placement group and the rank actors. master_in_process: rank 0 is the caller itself
    (Python's LLM); its bundle is reserved on this node but no process is started for it."""

    def __init__(self, ray, args, rest: List[str], master_in_process: bool = False) -> None:
        self.ray, self.args, self.rest = ray, args, rest
        self.master_in_process = master_in_process
        self.master = ""
        self.token = ""
        self.world = args.tp * args.pp
        gpu = args.device == "cuda"
        self.unit = "GPU" if gpu else "CPU"
        self.bundle = {"GPU": 1.0, "CPU": args.ray_cpus_per_rank} if gpu else {
            "CPU": args.ray_cpus_per_rank}
        self.pg = None
        self.actors: List = []
        self.stopping = False

    def start(self) -> None:
        ray = self.ray
        check_resources(ray, self.world, self.unit, self.bundle[self.unit])
        head_node = ray.get_runtime_context().get_node_id()
        head_ip = ray.util.get_node_ip_address()
        self.pg, order = reserve(ray, self.world, self.bundle, head_node)
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        cls = rank_process_class(ray)
        self.actors = [cls.options(
            num_cpus=self.bundle["CPU"], num_gpus=self.bundle.get("GPU", 0),
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                self.pg, placement_group_bundle_index=index)).remote() for index in order]
        self.nodes = ray.get([a.node.remote() for a in self.actors])
        self.token = os.environ.get("SHARDLM_CLUSTER_TOKEN") or secrets.token_hex(16)
        self.master = master = f"{head_ip}:{free_port()}"
        first = 1 if self.master_in_process else 0
        for rank, actor in enumerate(self.actors[first:], start=first):
            ray.get(actor.start.remote(self.rank_argv(rank, master),
                                       {"SHARDLM_CLUSTER_TOKEN": self.token}))
        spread = {}
        for rank, (_, ip) in enumerate(self.nodes):
            spread.setdefault(ip, []).append(rank)
        log(f"{self.world} ranks (tp {self.args.tp} x pp {self.args.pp}) placed: " + "; ".join(
            f"{ip}: ranks {','.join(map(str, ranks))}" for ip, ranks in spread.items()) +
            f"; rendezvous {master}; rank 0 on this node")

    def rank_argv(self, rank: int, master: str) -> List[str]:
        a = self.args
        argv = [a.binary, "serve", *self.rest, "--tp", str(a.tp), "--pp", str(a.pp),
                "--nnodes", str(self.world), "--node-rank", str(rank), "--nproc-per-node", "1",
                "--dist-init-addr", master]
        if a.device and "--device" not in self.rest:
            argv += ["--device", a.device]
        if rank == 0:
            return argv + ["--host", a.host, "--port", a.port]
        return argv + ["--port", "0"]  # a worker's /health, on any free port

    def run(self) -> int:
        ray = self.ray
        waits = {actor.wait.remote(): rank for rank, actor in enumerate(self.actors)}
        master_wait = next(w for w, r in waits.items() if r == 0)
        while True:
            done, _ = ray.wait(list(waits), num_returns=1, timeout=1.0)
            for ref in done:
                rank = waits.pop(ref)
                try:
                    status = ray.get(ref)
                except Exception as e:  # the actor died: its Ray node was lost
                    status = 1
                    log(f"rank {rank} on node {self.nodes[rank][1]} is gone: its Ray actor died "
                        f"({type(e).__name__}); the master reports it in /health")
                if ref == master_wait:
                    return status
                if status != 0 and not self.stopping:
                    log(f"rank {rank} on {self.nodes[rank][1]} exited with status {status}")

    def signal_master(self, sig: int) -> None:
        self.stopping = True
        if self.actors:
            self.actors[0].signal.remote(sig)

    def close(self) -> None:
        from ray.util.placement_group import remove_placement_group
        deadline = time.monotonic() + 20
        for actor in self.actors[1:]:  # they exit once the master ended the group
            try:
                self.ray.get(actor.wait.remote(), timeout=max(deadline - time.monotonic(), 0.1))
            except Exception:
                pass
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:
                pass
        if self.pg is not None:
            remove_placement_group(self.pg)
            self.pg = None


class RayGroup:
    """LLM(..., distributed_executor_backend="ray"): the ranks of a group placed on the running
    Ray cluster, rank 0 being this process (it must run on a Ray node: it gets a bundle there).
    `place` is rank 0's place in the group, for the in-process engine; stop() after the engine
    ended the group frees everything."""

    def __init__(self, spec, rank_argv: List[str]) -> None:
        from types import SimpleNamespace
        from . import _core
        from ._paths import binary
        if spec.ips or spec.dist_init_addr:
            raise ValueError("distributed_executor_backend='ray' places the ranks itself: leave "
                             "ips and dist_init_addr out")
        self.ray = import_ray_or_value_error()
        try:
            connect(self.ray, os.environ.get("RAY_ADDRESS", "auto"))
        except ExecutorError as e:
            raise RuntimeError(str(e)) from None
        args = SimpleNamespace(binary=binary(), tp=spec.tp, pp=spec.pp, device=device_of(rank_argv),
                               host="127.0.0.1", port="0", ray_cpus_per_rank=1.0)
        rest = [*rank_argv, "--dist-timeout", str(spec.dist_timeout), "--log-interval", "0",
                *(["--tp-exact"] if spec.tp_exact else [])]
        self.executor = Executor(self.ray, args, rest, master_in_process=True)
        try:
            self.executor.start()
        except BaseException as e:
            self.stop()
            if isinstance(e, ExecutorError):
                raise RuntimeError(str(e)) from None
            raise
        world = spec.tp * spec.pp
        flags = _core.LaunchFlags()
        flags.tp, flags.pp = spec.tp, spec.pp
        flags.tp_exact = spec.tp_exact
        flags.nnodes, flags.node_rank, flags.nproc_per_node = world, 0, 1
        flags.dist_init_addr = self.executor.master
        flags.dist_timeout = spec.dist_timeout
        flags.cluster_token = self.executor.token
        self.place = _core.resolve_place(flags, {})

    def stop(self) -> int:
        if self.executor is None:
            return 0
        executor, self.executor = self.executor, None
        try:
            executor.close()
        finally:
            self.ray.shutdown()
        return 0


def import_ray_or_value_error():
    try:
        return import_ray()
    except ExecutorError as e:
        raise RuntimeError(str(e)) from None


def device_of(argv: List[str]) -> str:
    return argv[argv.index("--device") + 1] if "--device" in argv else ""


def main(argv: List[str]) -> int:
    try:
        args, rest = parse(argv)
        ray = import_ray()
        connect(ray, os.environ.get("RAY_ADDRESS", "auto"))
    except ExecutorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    executor = Executor(ray, args, rest)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _: executor.signal_master(signal.SIGTERM))
    try:
        executor.start()
        return executor.run()
    except ExecutorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        executor.close()
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
