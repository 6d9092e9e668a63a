"""Launching a group the way srun does: no group flags, only the variables SLURM sets
(SLURM_PROCID, SLURM_NTASKS, SLURM_JOB_NODELIST; the master is the first host of the list). The
default model in two pipeline stages on loopback equals one process."""
import os
import subprocess

from conftest import BINARY, MODEL, Server
from test_tensor_parallel import PROMPTS, free_port, greedy


def test_slurm_environment_group():
    single = Server()
    expected = [greedy(single, p) for p in PROMPTS[:2]]
    assert single.stop() == 0
    port = free_port()
    slurm = {"SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "localhost", "SLURM_NNODES": "2",
             "SLURM_TASKS_PER_NODE": "1(x2)", "SLURM_LOCALID": "0"}
    worker = subprocess.Popen([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                               "--log-interval", "0", "--pp", "2", "--dist-init-addr",
                               f"localhost:{port}"],
                              env={**os.environ, **slurm, "SLURM_PROCID": "1", "SLURM_NODEID": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    old = dict(os.environ)
    os.environ.update({**slurm, "SLURM_PROCID": "0", "SLURM_NODEID": "0"})
    try:
        master = Server(["--pp", "2", "--dist-init-addr", f"localhost:{port}"])
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        assert "(slurm launch)" in master.text()
        assert [greedy(master, p) for p in PROMPTS[:2]] == expected
    finally:
        assert master.stop() == 0, master.text()
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, out
