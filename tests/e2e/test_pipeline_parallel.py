"""Pipeline parallelism across processes on loopback: the default model's 30 layers in two stages
(`--pp 2 --nnodes 2`) give the same greedy outputs through the HTTP API as one process."""
import re
import subprocess

from conftest import BINARY, MODEL, Server
from test_tensor_parallel import PROMPTS, free_port, greedy


def pp_args(rank, port):
    return ["--pp", "2", "--nnodes", "2", "--node-rank", str(rank), "--dist-init-addr",
            f"127.0.0.1:{port}", "--dist-timeout", "60"]


def test_pp2_equals_single_process():
    single = Server()
    expected = [greedy(single, p) for p in PROMPTS]
    assert single.stop() == 0
    port = free_port()
    worker = subprocess.Popen([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                               "--log-interval", "0", *pp_args(1, port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    master = Server(pp_args(0, port))
    try:
        assert [greedy(master, p) for p in PROMPTS] == expected
        assert re.search(r"rank 0: tp rank 0 of 1, stage 0 of 2, layers 0-14", master.text())
    finally:
        assert master.stop() == 0, master.text()
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, out
        assert "rank 1: tp rank 0 of 1, stage 1 of 2, layers 15-29" in out
