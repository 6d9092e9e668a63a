"""Expert parallelism on the CPU through the real binary: `--enable-expert-parallel` (vLLM) and
`--ep-size` (SGLang) shard a mixture of experts over the --tp ranks by expert, each rank whole
experts; groups of 2 and 4 ranks in the exact mode (--tp-exact; Megatron's partial sums are
test_megatron_moe's) give one process's greedy text and logprobs, also with 64 streams at once; /metrics reports each rank's expert load; an --ep-size that is not the --tp size is
refused with a message saying what to give."""
import subprocess
import time

import pytest

from conftest import BINARY, Server
from test_group_layouts import TOOL, complete, concurrently
from test_tensor_parallel import free_port

PROMPTS = ["hello world", "the quick brown fox", "1 2 3", "abcabc", "zzz", "mixture of experts",
           "expert parallel", "a b c"]


@pytest.fixture(scope="module")
def qwen3_moe(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ep") / "qwen3_moe")
    subprocess.run([TOOL, path, "--hf", "--arch", "qwen3_moe", "--layers", "3", "--untied"],
                   check=True)
    return path


@pytest.fixture(scope="module")
def expected(qwen3_moe):
    single = Server(model=qwen3_moe, threads=2)
    try:
        return [complete(single, p) for p in PROMPTS]
    finally:
        assert single.stop() == 0, single.text()


@pytest.mark.parametrize("ranks,flags", [(2, ["--enable-expert-parallel"]),
                                         (4, ["--ep-size", "4"])])
def test_expert_parallel_equals_one_process(qwen3_moe, expected, ranks, flags):
    master = Server(["--tp", str(ranks), *flags, "--tp-exact", "--nproc-per-node", str(ranks),
                     "--dist-init-addr", f"127.0.0.1:{free_port()}", "--dist-timeout", "60",
                     "--max-num-seqs", "64"], model=qwen3_moe)
    try:
        assert [complete(master, p) for p in PROMPTS[:3]] == expected[:3]
        assert concurrently(master, PROMPTS * 8) == expected * 8
        # The expert load per rank: every rank ran some of the (token, expert) rows (workers
        # publish about once a second).
        deadline = time.monotonic() + 10
        loads = []
        while time.monotonic() < deadline:
            loads = [master.metric("shardlm:rank_expert_rows", rank=str(r)) for r in range(ranks)]
            if all(load and load > 0 for load in loads):
                break
            time.sleep(0.5)
        assert all(load and load > 0 for load in loads), loads
        for r in range(ranks):
            assert f"tp rank {r} of {ranks}, stage 0 of 1, layers 0-2, experts part {r + 1} of " \
                   f"{ranks} (expert parallel)" in master.text(), master.text()
    finally:
        assert master.stop() == 0, master.text()


def test_ep_size_other_than_tp_is_refused(qwen3_moe):
    out = subprocess.run([BINARY, "serve", "--model", qwen3_moe, "--port", "0", "--tp", "4",
                          "--ep-size", "2"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "--ep-size 2 is not supported with --tp 4" in out.stderr, out.stderr
    assert "give --ep-size 4" in out.stderr, out.stderr
