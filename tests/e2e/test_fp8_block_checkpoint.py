"""FP8 checkpoints of mixture-of-experts and latent-attention models as the hub publishes them, with
block-wise scales (DeepSeek-V3/R1's quant_method fp8 + weight_block_size and weight_scale_inv,
Qwen3-*-FP8 the same): `shardlm serve` on the CPU answers as the same model written in BF16 does
(greedy text and logprobs; bit for bit when SHARDLM_CPU_FP8_GROUPS=0 makes it dequantise every
matrix, within the BF16 copy's rounding where it keeps them in FP8), 64 streams at once as each alone, a TP=2 group with expert
parallelism as one process, and a checkpoint missing a block scale is refused at start-up with the
tensor named. In groups each rank dequantises only the matrices it holds: a PP=2 stage about half
of them, and a Megatron TP=2 rank its slices (its O and down columns with their scales), giving
what the BF16 model gives through the same group."""
import json
import os
import re
import subprocess

import pytest

from conftest import BINARY, Server
from test_fp8_checkpoint import drop_tensor
from test_group_layouts import SERVED_NAME, TOOL, complete, concurrently
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


def answers(model, prompts, ask=complete):
    """Each prompt's greedy answer (`ask`: text and logprobs) from one process on `model`."""
    server = Server(model=model, threads=2)
    try:
        return [ask(server, p) for p in prompts]
    finally:
        assert server.stop() == 0, server.text()


@pytest.mark.parametrize("arch", ARCHS)
def test_serves_as_the_bf16_model_and_64_streams_equal_alone(models, arch):
    fp8, bf16 = models[arch]
    config = json.load(open(os.path.join(fp8, "config.json")))
    assert config["quantization_config"]["weight_block_size"] == [32, 48]
    expected = answers(bf16, PROMPTS, complete_ids)
    server = Server(["--max-num-seqs", "64"], model=fp8, threads=2)
    try:
        alone = [complete_ids(server, p) for p in PROMPTS]
        # Matrices one block wide (a scale per row) stay FP8, so within the BF16 copy's rounding.
        agree_within(alone, expected)
        assert concurrently(server, PROMPTS * 8, complete_ids) == alone * 8
    finally:
        assert server.stop() == 0, server.text()
    assert "FP8 checkpoint (fp8, 32 x 48 blocks): " in server.text()
    assert "matrices bound as the file holds them" in server.text()


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


def rank_conversions(log):
    """The FP8 matrices each rank of a group prepared (kept in FP8 or dequantised), from its
    start-up log lines."""
    return [int(n) for n in re.findall(r"FP8 checkpoint: (\d+) matrices of this rank's weights:",
                                       log)]


def dense_pair(tmp_path_factory, fmt):
    base = tmp_path_factory.mktemp("fp8dense")
    fp8, bf16 = str(base / "fp8"), str(base / "bf16")
    subprocess.run([TOOL, fp8, "--layers", "4", "--untied", "--fp8", fmt, "--dequantised", bf16],
                   check=True)
    return fp8, bf16


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    return dense_pair(tmp_path_factory, "fp8_block")


@pytest.fixture(scope="module")
def dense_channel(tmp_path_factory):
    """Per-channel scales (fbgemm_fp8, as Meta-Llama-3.1-405B-Instruct-FP8 ships)."""
    return dense_pair(tmp_path_factory, "fbgemm_fp8")


def group(model, *flags, env=None):
    return Server([*flags, "--dist-init-addr", f"127.0.0.1:{free_port()}", "--dist-timeout", "60",
                   "--max-num-seqs", "64"], model=model, env=env)


def test_each_pipeline_stage_prepares_only_its_layers(dense):
    fp8, _ = dense
    expected = answers(fp8, PROMPTS)
    master = group(fp8, "--pp", "2", "--nproc-per-node", "2")
    try:
        assert concurrently(master, PROMPTS * 4) == expected * 4
    finally:
        assert master.stop() == 0, master.text()
    alone = Server(model=fp8)
    alone.stop()
    total = rank_conversions(alone.text())
    stages = rank_conversions(master.text())
    assert len(total) == 1 and len(stages) == 2, (total, stages)
    # 4 layers of 7 FP8 matrices (one down_proj is BF16): 27; each stage holds 2 layers.
    assert total[0] == 27 and sorted(stages) == [13, 14], (total, stages)


@pytest.mark.parametrize("scales,keep", [("block", False), ("channel", False), ("block", True),
                                         ("channel", True)])
def test_megatron_tp2_equals_the_bf16_model_through_the_same_group(dense, dense_channel, scales,
                                                                   keep):
    """Megatron TP slices O and down by input columns: an FP8 rank takes a window on its columns'
    codes with their scales (block or per row), kept FP8 where the scales allow (the default) or,
    with SHARDLM_CPU_FP8_GROUPS=0, dequantised. Dequantised it answers as the BF16 model's group
    does, bit for bit; kept, within the BF16 copy's rounding (agree_within)."""
    fp8, bf16 = dense if scales == "block" else dense_channel
    env = None if keep else dict(os.environ, SHARDLM_CPU_FP8_GROUPS="0")
    outs = []
    for model in (fp8, bf16):
        master = group(model, "--tp", "2", "--nproc-per-node", "2", env=env)
        try:
            outs.append(concurrently(master, PROMPTS * 4, complete_ids))
            assert "tensor parallel Megatron" in master.text(), master.text()[-3000:]
            if model == fp8:
                kept = [int(n) for n in re.findall(r"weights: (\d+) kept in FP8", master.text())]
                assert len(kept) == 2, master.text()[-3000:]
                if keep and scales == "channel":
                    assert min(kept) > 0, kept
                elif not keep:
                    assert max(kept) == 0, kept
        finally:
            assert master.stop() == 0, master.text()
    assert None not in outs[0] and None not in outs[1]
    if keep:  # per-row scales, and matrices one block wide, stay FP8
        agree_within(outs[0], outs[1])
    else:
        assert outs[0] == outs[1]


def complete_ids(server, prompt, max_tokens=12):
    """complete's greedy answer with its token ids (vLLM's return_token_ids) and logprobs."""
    status, body = server.post("/v1/completions", {"model": SERVED_NAME, "prompt": prompt,
                                                    "max_tokens": max_tokens, "temperature": 0,
                                                    "ignore_eos": True, "logprobs": 1,
                                                    "return_token_ids": True})
    assert status == 200, body
    choice = body["choices"][0]
    return choice["token_ids"], choice["logprobs"]["token_logprobs"]


def agree_within(got, want, tol=0.02):
    """Greedy answers (complete_ids) from two models equal but for rounding: each token's logprob
    within tol of the other's up to and including the first token where the answers part (a near
    tie broken the other way: the greedy token's logprob is the largest, which rounding moves
    little even where the token changes). At least half of the answers agree to the end."""
    whole = 0
    for (ids_a, lps_a), (ids_b, lps_b) in zip(got, want):
        assert len(ids_a) == len(ids_b) == len(lps_a) == len(lps_b), (ids_a, ids_b)
        for i in range(len(ids_a)):
            assert abs(lps_a[i] - lps_b[i]) <= tol, (i, ids_a, lps_a, ids_b, lps_b)
            if ids_a[i] != ids_b[i]:
                break
        else:
            whole += 1
    assert whole * 2 >= len(got), (whole, len(got))
