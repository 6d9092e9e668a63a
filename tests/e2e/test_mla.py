"""DeepSeek-V2/V3 (multi-head latent attention, a KV cache of latent rows) and ERNIE-4.5 MoE through
the user's path on the CPU: `shardlm serve` answers chat completions from tiny Hugging Face
checkpoints with the greedy text `shardlm generate` gives, 64 streams at once give what each gives
alone, PP=2 and TP=2 groups (with and without expert parallelism) equal one process, and a bad
checkpoint is refused with one line naming the field and what to do."""
import json
import subprocess

import pytest

from conftest import BINARY, SERVED_NAME, Server
from test_group_layouts import TOOL, complete, concurrently
from test_tensor_parallel import free_port

ARCHS = ["deepseek_v2", "deepseek_v3", "ernie4_5_moe"]
PROMPTS = ["hello world", "the quick brown fox", "1 2 3", "abcabc", "zzz", "latent attention",
           "experts", "a b c d e f"]
CHAT_TOKENS = 12


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for arch in ARCHS:
        path = str(tmp_path_factory.mktemp("mla") / arch)
        subprocess.run([TOOL, path, "--hf", "--arch", arch, "--layers", "3", "--untied"],
                       check=True)
        out[arch] = path
    return out


def generate_chat(model, prompt):
    out = subprocess.run([BINARY, "generate", "-m", model, "-t", "2", "--chat", "-p", prompt, "-n",
                          str(CHAT_TOKENS), "--temperature", "0", "--ignore-eos"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def chat(server, prompt):
    status, body = server.post("/v1/chat/completions", {
        "model": SERVED_NAME, "messages": [{"role": "user", "content": prompt}],
        "max_tokens": CHAT_TOKENS, "temperature": 0, "ignore_eos": True})
    assert status == 200, body
    assert body["usage"]["completion_tokens"] == CHAT_TOKENS
    return body["choices"][0]["message"]["content"]


@pytest.mark.parametrize("arch", ARCHS)
def test_chat_equals_generate_and_64_streams_equal_alone(models, arch):
    model = models[arch]
    server = Server(["--max-num-seqs", "64"], model=model, threads=2)
    try:
        for prompt in PROMPTS[:2]:
            assert chat(server, prompt) == generate_chat(model, prompt), prompt
        alone = [complete(server, p) for p in PROMPTS]
        assert concurrently(server, PROMPTS * 8) == alone * 8
    finally:
        assert server.stop() == 0, server.text()


def test_info_names_the_latent_cache(models):
    info = subprocess.run([BINARY, "info", "-m", models["deepseek_v3"]], capture_output=True,
                          text=True)
    assert info.returncode == 0, info.stderr
    assert "architecture:   deepseek_v3" in info.stdout
    assert "latent attn:    kv_lora 32 + rope key 8 cached per token" in info.stdout, info.stdout
    assert "YaRN scaling" in info.stdout


def test_pp2_equals_one_process(models):
    """Two pipeline stages of one supervisor, each with its layers' latent cache."""
    model = models["deepseek_v3"]
    single = Server(model=model, threads=2)
    try:
        expected = [complete(single, p) for p in PROMPTS[:4]]
    finally:
        assert single.stop() == 0, single.text()
    master = Server(["--pp", "2", "--nproc-per-node", "2", "--dist-init-addr",
                     f"127.0.0.1:{free_port()}", "--dist-timeout", "60"], model=model)
    try:
        assert concurrently(master, PROMPTS[:4] * 16) == expected * 16
    finally:
        assert master.stop() == 0, master.text()


def run_serve(model, *args):
    return subprocess.run([BINARY, "serve", "--model", model, "--port", "0", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flags", [[], ["--enable-expert-parallel"],
                                   ["--pp", "2", "--enable-expert-parallel"]])
def test_tp2_equals_one_process(models, flags):
    """Two ranks (per stage), each half of the query heads over the whole latent cache; the
    experts sliced, or whole experts per rank with expert parallelism; TP x PP x EP on four. The
    exact mode: bit-identical (Megatron within tolerance: test_megatron_moe)."""
    model = models["deepseek_v3"]
    single = Server(model=model, threads=2)
    try:
        expected = [complete(single, p) for p in PROMPTS]
    finally:
        assert single.stop() == 0, single.text()
    ranks = 4 if "--pp" in flags else 2
    master = Server(["--tp", "2", *flags, "--tp-exact", "--nproc-per-node", str(ranks),
                     "--dist-init-addr",
                     f"127.0.0.1:{free_port()}", "--dist-timeout", "60", "--max-num-seqs", "64"],
                    model=model)
    try:
        assert concurrently(master, PROMPTS * 8) == expected * 8
        assert ("expert parallel" in master.text()) == bool(flags), master.text()
    finally:
        assert master.stop() == 0, master.text()


@pytest.mark.parametrize("edit,message", [
    ({"topk_method": "random"}, "topk_method 'random' is not supported"),
    ({"n_group": 3}, "n_group 3 must divide the 8 experts"),
    ({"kv_lora_rank": 16}, "kv_a_proj_with_mqa.weight"),
])
def test_bad_checkpoint_is_named(models, tmp_path, edit, message):
    import shutil
    model = tmp_path / "bad"
    shutil.copytree(models["deepseek_v3"], model)
    config = json.loads((model / "config.json").read_text())
    config.update(edit)
    (model / "config.json").write_text(json.dumps(config))
    out = run_serve(str(model))
    assert out.returncode == 1
    assert message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3, out.stderr
