"""Mixture-of-experts models through the user's path on the CPU: `shardlm serve` answers chat
completions from a tiny qwen3_moe Hugging Face checkpoint with the greedy text `shardlm generate`
gives, requests run together give what they give alone (a token's experts do not depend on its
neighbours), a mixtral GGUF file (llama.cpp's layout: "llama" with an expert count, stacked
experts) and an ERNIE-4.5 one ("ernie4_5-moe") serve, TP=2 groups (each rank half of every
expert) and a TP=2 x PP=2 group equal one process in the exact mode (--tp-exact; Megatron's
partial sums: test_megatron_moe), and --load-format dummy builds a MoE model from a config.json."""
import json
import subprocess

import pytest

from conftest import BINARY, SERVED_NAME, Server
from test_group_layouts import TOOL, complete, concurrently, finish, node_args, start
from test_tensor_parallel import free_port

PROMPTS = ["hello world", "the quick brown fox", "1 2 3", "abcabc", "zzz", "mixture of experts"]
CHAT_TOKENS = 16


@pytest.fixture(scope="module")
def qwen3_moe(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("moe") / "qwen3_moe")
    subprocess.run([TOOL, path, "--hf", "--arch", "qwen3_moe", "--layers", "4",
                    "--untied"], check=True)
    return path


@pytest.fixture(scope="module")
def mixtral_gguf(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("moe") / "mixtral.gguf")
    subprocess.run([TOOL, path, "--arch", "mixtral", "--layers", "3", "--untied"], check=True)
    return path


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


def test_chat_completions_equal_generate(qwen3_moe):
    server = Server(model=qwen3_moe, threads=2)
    try:
        for prompt in PROMPTS[:3]:
            assert chat(server, prompt) == generate_chat(qwen3_moe, prompt), prompt
        info = subprocess.run([BINARY, "info", "-m", qwen3_moe], capture_output=True, text=True)
        assert "qwen3_moe" in info.stdout and "experts:        8 (3 per token" in info.stdout, \
            info.stdout
    finally:
        assert server.stop() == 0, server.text()


def test_requests_together_equal_alone(qwen3_moe):
    server = Server(model=qwen3_moe, threads=2)
    try:
        alone = [complete(server, p) for p in PROMPTS]
        assert concurrently(server, PROMPTS) == alone
    finally:
        assert server.stop() == 0, server.text()


@pytest.fixture(scope="module")
def ernie_gguf(tmp_path_factory):
    """llama.cpp's ernie4_5-moe layout: a leading dense layer, shared experts, exp_probs_b."""
    path = str(tmp_path_factory.mktemp("moe") / "ernie.gguf")
    subprocess.run([TOOL, path, "--reference", "ernie4_5_moe"], check=True)
    return path


@pytest.mark.parametrize("model_fixture,arch", [("mixtral_gguf", "mixtral"),
                                                ("ernie_gguf", "ernie4_5_moe")])
def test_gguf_serves(model_fixture, arch, request):
    model = request.getfixturevalue(model_fixture)
    info = subprocess.run([BINARY, "info", "-m", model], capture_output=True, text=True)
    assert f"architecture:   {arch}" in info.stdout, info.stdout
    server = Server(model=model, threads=2)
    try:
        text, _ = complete(server, "hello")
        assert text
        assert chat(server, "hello") == generate_chat(model, "hello")
    finally:
        assert server.stop() == 0, server.text()


@pytest.fixture(scope="module")
def qwen2_moe(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("moe") / "qwen2_moe")
    subprocess.run([TOOL, path, "--hf", "--arch", "qwen2_moe", "--layers", "3", "--untied"],
                   check=True)
    return path


@pytest.mark.parametrize("model_fixture", ["mixtral_gguf", "qwen2_moe", "ernie_gguf"])
def test_tp2_equals_one_process(model_fixture, request):
    """Each rank holds half of every expert's FFN (and of the shared expert)."""
    model = request.getfixturevalue(model_fixture)
    expected = reference_texts(model, PROMPTS[:3])
    port = free_port()
    workers = [start(model, node_args(1, 2, port, "--tp", "2", "--tp-exact"))]
    master = Server(node_args(0, 2, port, "--tp", "2", "--tp-exact"), model=model)
    try:
        assert [complete(master, p) for p in PROMPTS[:3]] == expected
    finally:
        finish(master, workers)


def test_tp2_pp2_one_supervisor(qwen3_moe):
    """Four ranks of one supervisor: two pipeline stages, each two tensor-parallel ranks."""
    expected = reference_texts(qwen3_moe, PROMPTS)
    master = Server(["--tp", "2", "--pp", "2", "--tp-exact", "--nproc-per-node", "4",
                     "--dist-init-addr", f"127.0.0.1:{free_port()}", "--dist-timeout", "60"],
                    model=qwen3_moe)
    try:
        assert concurrently(master, PROMPTS) == expected
    finally:
        assert master.stop() == 0, master.text()


def reference_texts(model, prompts):
    single = Server(model=model, threads=2)
    try:
        return [complete(single, p) for p in prompts]
    finally:
        assert single.stop() == 0, single.text()


def test_dummy_weights_of_a_moe_config(tmp_path):
    config = {"model_type": "qwen3_moe", "hidden_size": 64, "intermediate_size": 96,
              "moe_intermediate_size": 32, "num_experts": 8, "num_experts_per_tok": 2,
              "norm_topk_prob": True, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 320,
              "max_position_embeddings": 256}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    server = Server(["--load-format", "dummy"], model=str(path))
    try:
        status, body = server.post("/v1/completions", {"model": SERVED_NAME, "prompt": "hi",
                                                        "max_tokens": 4, "ignore_eos": True})
        assert status == 200, body
        assert body["usage"]["completion_tokens"] == 4
    finally:
        assert server.stop() == 0, server.text()
