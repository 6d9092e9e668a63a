"""Megatron tensor parallelism for mixtures of experts and multi-head latent attention on the CPU
(the default for --tp; --tp-exact keeps the gathers, tested in test_moe/test_mla/
test_expert_parallel): each rank's experts (1/tp of each, or with --enable-expert-parallel its
whole experts' slots) and its share of the shared expert write a partial sum, one all-reduce per
MoE layer completes it, and MLA's O is row-parallel over the heads' value columns. Through the
real binary, a tiny Qwen3-MoE and a tiny DeepSeek-V3 (MLA, a dense first layer, sigmoid routing,
a shared expert) give one process's greedy text except at recorded near-ties, with log-probabilities
within tolerance, also at 64 concurrent streams and as TP x PP x EP on four ranks."""
import subprocess

import pytest

from test_group_layouts import TINY_PROMPTS, TOOL, reference
from test_megatron_tp import complete, compare, run_prompts, supervised


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for arch in ("qwen3_moe", "deepseek_v3"):
        path = str(tmp_path_factory.mktemp("megatron_moe") / arch)
        subprocess.run([TOOL, path, "--hf", "--arch", arch, "--layers", "3", "--untied"],
                       check=True)
        out[arch] = path
    return out


@pytest.mark.parametrize("arch,tp,pp,extra", [
    ("qwen3_moe", 2, 1, []),
    ("qwen3_moe", 2, 1, ["--enable-expert-parallel"]),
    ("deepseek_v3", 2, 1, []),
    ("deepseek_v3", 2, 2, ["--enable-expert-parallel"]),
])
def test_megatron_moe_equals_one_process_within_tolerance(models, arch, tp, pp, extra):
    model = models[arch]
    prompts = TINY_PROMPTS if pp == 1 else [f"{p} {i}" for i, p in enumerate(TINY_PROMPTS * 8)]
    expected = reference(model, prompts, complete)
    master = supervised(model, tp, pp, ["--max-num-seqs", "64", *extra])
    try:
        label = f"Megatron {arch} tp {tp} pp {pp} {' '.join(extra)}"
        compare(expected, run_prompts(master, prompts, concurrent=pp > 1), label)
        text = master.text()
        assert "tensor parallel Megatron (row-parallel O and down" in text, text
        assert ("(expert parallel)" in text) == bool(extra), text
    finally:
        assert master.stop() == 0, master.text()


def test_megatron_moe_64_streams(models):
    model = models["qwen3_moe"]
    prompts = [f"{TINY_PROMPTS[i % len(TINY_PROMPTS)]} {i}" for i in range(64)]
    expected = reference(model, prompts, complete)
    master = supervised(model, 2, extra=["--enable-expert-parallel", "--max-num-seqs", "64"])
    try:
        compare(expected, run_prompts(master, prompts, concurrent=True),
                "Megatron qwen3_moe tp 2 + EP, 64 streams")
    finally:
        assert master.stop() == 0, master.text()
