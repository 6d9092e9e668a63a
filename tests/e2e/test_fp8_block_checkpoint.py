"""FP8 checkpoints of mixture-of-experts and latent-attention models as the hub publishes them, with
block-wise scales (DeepSeek-V3/R1's quant_method fp8 + weight_block_size and weight_scale_inv,
Qwen3-*-FP8 the same): `shardlm serve` on the CPU dequantises them to BF16 as it loads and answers
exactly as the same model written in BF16 does (greedy text and logprobs), 64 streams at once as
each alone, a TP=2 group with expert parallelism as one process, and a checkpoint missing a block
scale is refused at start-up with the tensor named."""
import json
import os
import subprocess

import pytest

from conftest import BINARY, Server
from test_fp8_checkpoint import drop_tensor
from test_group_layouts import TOOL, complete, concurrently
from test_tensor_parallel import free_port

ARCHS = ["deepseek_v3", "qwen3_moe"]
PROMPTS = ["hello world", "the quick brown fox", "1 2 3", "abcabc", "zzz", "block scales",
           "experts", "a b c d e f"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for arch in ARCHS:
        base = tmp_path_factory.mktemp("fp8block")
        fp8, bf16 = str(base / "fp8"), str(base / "bf16")
        subprocess.run([TOOL, fp8, "--arch", arch, "--layers", "3", "--untied", "--fp8",
                        "fp8_block", "--dequantised", bf16], check=True)
        out[arch] = (fp8, bf16)
    return out


def answers(model, prompts):
    """Each prompt's greedy text and logprobs from one process on `model`."""
    server = Server(model=model, threads=2)
    try:
        return [complete(server, p) for p in prompts]
    finally:
        assert server.stop() == 0, server.text()


@pytest.mark.parametrize("arch", ARCHS)
def test_serves_as_the_bf16_model_and_64_streams_equal_alone(models, arch):
    fp8, bf16 = models[arch]
    config = json.load(open(os.path.join(fp8, "config.json")))
    assert config["quantization_config"]["weight_block_size"] == [32, 48]
    expected = answers(bf16, PROMPTS)
    server = Server(["--max-num-seqs", "64"], model=fp8, threads=2)
    try:
        alone = [complete(server, p) for p in PROMPTS]
        assert alone == expected
        assert concurrently(server, PROMPTS * 8) == expected * 8
    finally:
        assert server.stop() == 0, server.text()
    assert "FP8 checkpoint (fp8, 32 x 48 blocks) dequantised to BF16 as it loads" in server.text()


def test_tp2_with_expert_parallelism_equals_one_process(models):
    fp8, _ = models["deepseek_v3"]
    expected = answers(fp8, PROMPTS)
    master = Server(["--tp", "2", "--enable-expert-parallel", "--tp-exact", "--nproc-per-node",
                     "2", "--dist-init-addr", f"127.0.0.1:{free_port()}", "--dist-timeout", "60",
                     "--max-num-seqs", "64"], model=fp8)
    try:
        assert concurrently(master, PROMPTS * 8) == expected * 8
        assert "expert parallel" in master.text()
    finally:
        assert master.stop() == 0, master.text()


def test_a_missing_block_scale_is_named_at_start_up(models, tmp_path):
    import shutil
    model = tmp_path / "bad"
    shutil.copytree(models["deepseek_v3"][0], model)
    name = "model.layers.2.mlp.experts.5.down_proj.weight_scale_inv"
    drop_tensor(str(model / "model.safetensors"), name)
    out = subprocess.run([BINARY, "serve", "--model", str(model), "--port", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout
    assert f"has no '{name}' tensor" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3, out.stderr
