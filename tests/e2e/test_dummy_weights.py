"""--load-format dummy through the user's path: `shardlm serve` on a config.json with no weights
file answers completions; a TP=2 group of two processes generates the same weights on each rank
and so the same tokens as one process; `bench offline` runs on a preset's shape; a wrong name is
an immediate error that lists the presets."""
import json
import subprocess

from conftest import BINARY, SERVED_NAME, Server
from test_group_layouts import complete, finish, node_args, start
from test_tensor_parallel import free_port

CONFIG = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": 320, "max_position_embeddings": 256, "tie_word_embeddings": False}
DUMMY = ["--load-format", "dummy"]


def write_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


def test_serve_and_tp2_on_dummy_weights(tmp_path):
    config = write_config(tmp_path)
    single = Server(DUMMY, model=config)
    try:
        status, models = single.post("/v1/completions", {"model": SERVED_NAME, "prompt": "hi",
                                                         "max_tokens": 5, "ignore_eos": True})
        assert status == 200, models
        assert models["usage"]["completion_tokens"] == 5
        expected = [complete(single, p) for p in ("hello", "dummy weights")]
    finally:
        assert single.stop() == 0, single.text()
    assert "dummy" in single.text()
    port = free_port()
    # --tp-exact: the comparison is exact, log-probabilities included (test_megatron_tp.py
    # compares Megatron TP within tolerance).
    workers = [start(config, [*DUMMY, *node_args(1, 2, port, "--tp", "2", "--tp-exact")])]
    master = Server([*DUMMY, *node_args(0, 2, port, "--tp", "2", "--tp-exact")], model=config)
    try:
        assert [complete(master, p) for p in ("hello", "dummy weights")] == expected
    finally:
        finish(master, workers)


def test_bench_offline_on_a_preset():
    out = subprocess.run([BINARY, "bench", "offline", *DUMMY, "-m", "smollm2-135m", "--device",
                          "cpu", "--enforce-eager", "-t", "2", "-p", "16", "-n", "4", "-r", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "| smollm2-135m | 2 | tg4 |" in out.stdout, out.stdout


def test_unknown_preset_is_named():
    out = subprocess.run([BINARY, "serve", *DUMMY, "-m", "llama-9000", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "'llama-9000' is not a preset" in out.stderr + out.stdout
    assert "llama-3.1-8b" in out.stderr + out.stdout
