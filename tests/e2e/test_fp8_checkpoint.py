"""FP8 checkpoints as published (fbgemm_fp8, compressed-tensors) through `shardlm serve` on the
CPU, which keeps them in FP8 (or, with SHARDLM_CPU_FP8_GROUPS=0, dequantises them to BF16 at load):
64 concurrent greedy completions all answer and agree with the same prompt asked alone; a checkpoint missing a scale tensor, one with an unknown
quant_method, and --quantization with another scheme stop at start-up with the cause named."""
import json
import os
import re
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BINARY, SERVED_NAME, Server

TOOL = os.environ.get("SHARDLM_TINY_MODEL_TOOL", "build/tests/shardlm_tiny_model")


def write_fp8(path, fmt):
    subprocess.run([TOOL, str(path), "--layers", "2", "--untied", "--fp8", fmt], check=True)
    return str(path)


def complete(server, prompt):
    status, body = server.post("/v1/completions", {"model": SERVED_NAME, "prompt": prompt,
                                                   "max_tokens": 8, "temperature": 0,
                                                   "ignore_eos": True})
    assert status == 200, body
    return body["choices"][0]["text"]


def start_error(model, *extra):
    out = subprocess.run([BINARY, "serve", "--model", model, "--port", "0", "--device", "cpu",
                          *extra], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, out.stdout
    return out.stdout + out.stderr


@pytest.mark.parametrize("fmt,keep", [("fbgemm_fp8", False), ("compressed_tensors_channel", False),
                                      ("fbgemm_fp8", True)])
def test_fp8_checkpoint_serves_64_streams_on_the_cpu(tmp_path, fmt, keep):
    """Kept FP8 by default (a scale per 128 columns); dequantised to BF16 with
    SHARDLM_CPU_FP8_GROUPS=0."""
    model = write_fp8(tmp_path / "m", fmt)
    env = None if keep else dict(os.environ, SHARDLM_CPU_FP8_GROUPS="0")
    server = Server(["--device", "cpu", "--max-num-seqs", "64"], threads=2, model=model, env=env)
    try:
        prompts = [f"prompt {i % 8} abc" for i in range(64)]
        alone = {p: complete(server, p) for p in sorted(set(prompts))}
        with ThreadPoolExecutor(64) as pool:
            texts = list(pool.map(lambda p: complete(server, p), prompts))
        assert texts == [alone[p] for p in prompts]
    finally:
        assert server.stop() == 0, server.text()
    if keep:
        assert "FP8 checkpoint: each rank keeps the matrices it holds in FP8" in server.text()
        assert re.search(r"weights: [1-9]\d* kept in FP8 as published", server.text())
    else:
        assert "each rank dequantises the matrices it holds to BF16" in server.text()


def drop_tensor(path, name):
    """Rewrites a .safetensors file without one header entry (its bytes stay, unreferenced)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    del header[name]
    text = json.dumps(header).encode()
    text += b" " * ((8 - (len(text) + 8) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def test_bad_fp8_checkpoints_are_named_at_start_up(tmp_path):
    model = write_fp8(tmp_path / "m", "fbgemm_fp8")
    err = start_error(model, "--quantization", "int4")
    assert "--quantization" in err and "int4" in err, err
    drop_tensor(os.path.join(model, "model.safetensors"), "model.layers.1.mlp.up_proj.weight_scale")
    err = start_error(model)
    assert "model.layers.1.mlp.up_proj.weight_scale" in err, err
    config = os.path.join(model, "config.json")
    with open(config) as f:
        j = json.load(f)
    j["quantization_config"]["quant_method"] = "bitsandbytes"
    with open(config, "w") as f:
        json.dump(j, f)
    err = start_error(model)
    assert "quant_method 'bitsandbytes' is not supported" in err, err


def test_kv_cache_dtype_on_the_cpu(tmp_path):
    """--kv-cache-dtype fp8 is refused on the CPU with the fix named; auto serves, and /metrics
    says the KV cache's element type."""
    model = write_fp8(tmp_path / "m", "compressed_tensors_tensor")
    err = start_error(model, "--kv-cache-dtype", "fp8")
    assert "--kv-cache-dtype fp8" in err and "--device cuda" in err, err
    err = start_error(model, "--kv-cache-dtype", "int3")
    assert "'int3' is not a KV cache type" in err, err
    server = Server(["--device", "cpu", "--kv-cache-dtype", "auto"], model=model)
    try:
        complete(server, "hello")
        status, text = server.get("/metrics")
        assert status == 200
        assert 'shardlm:cache_config_info{' in text and 'cache_dtype="F32"' in text, text[-2000:]
    finally:
        assert server.stop() == 0, server.text()
    assert "F32 at 4 byte(s) per element" in server.text()


PY_SCRIPT = r"""
import json, sys
from shardlm import LLM, SamplingParams
out = {}
llm = LLM(model=sys.argv[1], device="cpu", threads=1, kv_cache_dtype="auto")
res = llm.generate(["hello"], SamplingParams(temperature=0, max_tokens=4, ignore_eos=True),
                   use_tqdm=False)
out["tokens"] = len(res[0].outputs[0].token_ids)
llm.shutdown()
for kw in ({"kv_cache_dtype": "int8"}, {"quantization": "awq"}, {"kv_cache_dtype": "fp8"}):
    try:
        LLM(model=sys.argv[1], device="cpu", threads=1, **kw)
        out[str(kw)] = "no error"
    except Exception as e:  # ValueError for a bad name, the engine's error for the CPU
        out[str(kw)] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def test_python_api_takes_fp8_checkpoints_and_kv_cache_dtype(tmp_path):
    from python_api import run_script
    model = write_fp8(tmp_path / "m", "fp8_tensor")
    rc, out, err = run_script(PY_SCRIPT, model)
    assert rc == 0, err[-4000:]
    assert out["tokens"] == 4
    assert out[str({"kv_cache_dtype": "int8"})].startswith("ValueError") and "kv_cache_dtype" in \
        out[str({"kv_cache_dtype": "int8"})]
    assert "quantization" in out[str({"quantization": "awq"})]
    assert "--kv-cache-dtype fp8" in out[str({"kv_cache_dtype": "fp8"})], out
