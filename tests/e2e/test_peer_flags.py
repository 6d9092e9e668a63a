"""Launch commands written for the engines shardlm replaces work unchanged: SGLang's
`--model-path`, vLLM/SGLang's `--trust-remote-code` and FastDeploy's `--engine-worker-queue-port`
are accepted (the last two named in the log as having no effect here), SGLang's
`--enable-dp-attention` is refused saying what to drop; whole vLLM, SGLang and trtllm-serve command
lines start a server whose limits are the ones those flags set (their names for the context
length, batch, step budget, prefix cache, CUDA graphs), their tuning knobs each named in the log;
flags whose meaning shardlm cannot honour are refused at start-up with what to do; --chat-template
replaces the model's template; --generation-config (the model's generation_config.json as sampling
defaults, or vllm for none) and --seed (repeatable unseeded requests) act as in vLLM; `doctor`
takes serve's flags, so one command line runs both, and its --help shows its real --dist-timeout
default."""
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from conftest import BINARY, MODEL, SERVED_NAME, Server

TOOL = os.environ.get("SHARDLM_TINY_MODEL_TOOL", "build/tests/shardlm_tiny_model")


def start_reading_log(args):
    """Starts `args` and reads its output up to the listening line: (process, the match of that
    line, the log so far)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = ""
    deadline = time.monotonic() + 60
    while not (m := re.search(r"on http://127\.0\.0\.1:(\d+) ", log)):
        assert time.monotonic() < deadline and proc.poll() is None, log
        log += proc.stdout.readline()
    return proc, m, log


def test_peer_flags_start_a_server():
    proc, m, log = start_reading_log([BINARY, "serve", "--model-path", MODEL,
                                      "--trust-remote-code", "--engine-worker-queue-port", "8002",
                                      "--port", "0", "--threads", "1"])
    try:
        body = json.dumps({"prompt": "Hello", "max_tokens": 2}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{m.group(1)}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200
        assert "--trust-remote-code has no effect" in log
        assert "--engine-worker-queue-port has no effect" in log
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_sglang_dp_attention_is_refused_saying_what_to_drop():
    """SGLang's DeepSeek command line (its --dp means attention groups inside --tp there)."""
    out = subprocess.run([BINARY, "serve", "--model-path", MODEL, "--tp", "2", "--dp", "2",
                          "--enable-dp-attention", "--trust-remote-code", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "SGLang's data-parallel attention is not supported: drop the flag" in text, text
    assert "so drop that --dp as well" in text, text
    assert "supervising" not in text and "replica 0" not in text, text  # nothing started


def test_doctor_takes_serves_flags_and_shows_its_real_timeout():
    out = subprocess.run([BINARY, "doctor", "--host", "0.0.0.0", "--port", "9000", "--threads", "2",
                          "--max-model-len", "4096", "--no-prefix-caching", "--no-model",
                          "--context-length", "4096", "--dtype", "auto", "--disable-log-requests",
                          "--cuda-graph-bs", "1", "2", "4", "--seed", "3", "--max_batch_size", "8",
                          "--disable-custom-all-reduce"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nothing to check across nodes" in out.stdout
    help_text = subprocess.run([BINARY, "doctor", "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    assert re.search(r"--dist-timeout\s+FLOAT:FLOAT in \[1 - 86400\]=20\b", help_text), help_text


def test_rtp_llm_start_port_is_the_api_port(tmp_path):
    # rtp-llm's launch puts the API on START_PORT; without --port, so does shardlm.
    import socket
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WORLD_SIZE": "1", "WORLD_RANK": "0", "TP_SIZE": "1",
           "START_PORT": str(port)}
    proc = subprocess.Popen([BINARY, "serve", "--threads", "1", "--log-interval", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def limits(server):
    """(max_model_len from /v1/models, the start-up log's step limits)."""
    status, body = server.get("/v1/models")
    assert status == 200
    card = json.loads(body)["data"][0]
    m = re.search(r"steps of up to (\d+) sequences and (\d+) tokens", server.text())
    assert m, server.text()
    return card["max_model_len"], int(m.group(1)), int(m.group(2))


def complete(server, prompt, **fields):
    status, body = server.post("/v1/completions", {"model": SERVED_NAME, "prompt": prompt,
                                                   "max_tokens": 8, "ignore_eos": True, **fields})
    assert status == 200, body
    return body["choices"][0]["text"]


@pytest.mark.parametrize("engine,flags,expected", [
    ("vllm", ["--dtype", "auto", "--disable-log-requests", "--swap-space", "4",
              "--enable-prefix-caching", "--enable-chunked-prefill", "--max-seq-len-to-capture",
              "8192", "--uvicorn-log-level", "warning", "--disable-log-stats", "--load-format",
              "gguf", "--max-model-len", "112", "--max-num-seqs", "6"],
     (112, 6, None)),
    ("sglang", ["--context-length", "96", "--max-running-requests", "8", "--chunked-prefill-size",
                "128", "--disable-radix-cache", "--mem-fraction-static", "0.8",
                "--attention-backend", "flashinfer", "--cuda-graph-bs", "1", "2", "4",
                "--enable-torch-compile", "--schedule-policy", "lpm", "--disable-cuda-graph",
                "--log-level", "info", "--enable-metrics"],
     (96, 8, 128)),
    ("trtllm-serve", ["--tp_size", "1", "--pp_size", "1", "--max_batch_size", "4",
                      "--max_num_tokens", "64", "--max_seq_len", "80", "--backend", "pytorch",
                      "--kv_cache_free_gpu_memory_fraction", "0.9", "--trust_remote_code",
                      "--log_level", "info"],
     (80, 4, 64)),
])
def test_other_engines_command_lines_serve_with_their_limits(engine, flags, expected):
    server = Server(flags, threads=2)
    try:
        got = limits(server)
        assert got[:2] == expected[:2], (engine, got)
        if expected[2] is not None:
            assert got[2] == expected[2], (engine, got)
        assert len(complete(server, "Hello", temperature=0)) > 0
    finally:
        assert server.stop() == 0, server.text()
    log = server.text()
    knobs = {"vllm": ["--swap-space", "--disable-log-requests", "--max-seq-len-to-capture"],
             "sglang": ["--attention-backend", "--cuda-graph-max-bs", "--enable-torch-compile"],
             "trtllm-serve": ["--backend", "--kv_cache_free_gpu_memory_fraction",
                              "--trust-remote-code"]}[engine]
    for knob in knobs:
        assert f"{knob} has no effect in shardlm: " in log, (knob, log[-3000:])
    if engine == "sglang":
        assert "--chunked-prefill-size" not in log  # a positive size is simply the step budget


@pytest.mark.parametrize("flags,message", [
    (["--enable-lora"], "LoRA adapters are not supported"),
    (["--lora-modules", "sql=/adapters/sql"], "LoRA adapters are not supported"),
    (["--extra_llm_api_options", "opts.yaml"], "shardlm reads no LLM API options file"),
    (["--quantization", "wint4"], "'wint4' is not supported: give fp8"),
    (["--enable-auto-tool-choice"], "--enable-auto-tool-choice needs --tool-call-parser"),
    (["--chat-template", "/nonexistent/template.jinja"], "no such file"),
    (["--chat-template", "{% for m in messages %}{{ m.content }"], "--chat-template does not "
                                                                   "compile"),
    (["--load-format", "safetensors"], "is not a Hugging Face directory"),
    (["--generation-config", "/nonexistent"], "no generation_config.json there"),
])
def test_flags_shardlm_cannot_honour_are_refused_at_start_up(flags, message):
    started = time.monotonic()
    out = subprocess.run([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                          *flags], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert message in text, text
    assert "on http://" not in text, text
    assert time.monotonic() - started < 30


def test_the_model_as_the_first_argument(tmp_path):
    """`vllm serve MODEL` / `trtllm-serve MODEL`; a different --model as well is refused."""
    tiny = str(tmp_path / "tiny-positional.gguf")
    subprocess.run([TOOL, tiny, "--layers", "1"], check=True)
    proc, m, _ = start_reading_log([BINARY, "serve", tiny, "--port", "0", "--threads", "1"])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/v1/models", timeout=30) as r:
            assert json.loads(r.read())["data"][0]["id"] == "tiny-positional"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    out = subprocess.run([BINARY, "serve", tiny, "--model", MODEL, "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "the model is given twice" in out.stdout + out.stderr


def test_disable_log_stats_turns_the_stats_lines_off():
    """The fixture passes --log-interval 1; 300 tokens keep the engine busy past it, which logs a
    stats line unless --disable-log-stats is given (it wins over --log-interval)."""
    def stats_lines(flags):
        server = Server(flags)
        try:
            complete(server, "Once upon a time", temperature=0, max_tokens=300)
        finally:
            assert server.stop() == 0, server.text()
        return server.text().count("Avg generation throughput")

    assert stats_lines([]) > 0
    assert stats_lines(["--disable-log-stats"]) == 0


def test_auto_tool_choice_with_a_parser_serves():
    server = Server(["--enable-auto-tool-choice", "--tool-call-parser", "hermes"])
    assert server.stop() == 0, server.text()


def test_chat_template_flag_replaces_the_models(tmp_path):
    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")
    for arg in (str(template), template.read_text()):  # a file, or the template inline
        server = Server(["--chat-template", arg])
        try:
            status, body = server.post("/v1/chat/completions", {
                "model": SERVED_NAME, "max_tokens": 2,
                "messages": [{"role": "user", "content": "hello there"}]})
            assert status == 200, body
            status, tok = server.post("/tokenize", {"prompt": "[user] hello there\n",
                                                    "add_special_tokens": False})
            assert status == 200, tok
            assert body["usage"]["prompt_tokens"] == tok["count"], (body, tok)
        finally:
            assert server.stop() == 0, server.text()


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    """A tiny Hugging Face model whose generation_config.json asks for greedy sampling."""
    path = tmp_path_factory.mktemp("gencfg") / "m"
    subprocess.run([TOOL, str(path), "--hf", "--untied", "--layers", "2"], check=True)
    (path / "generation_config.json").write_text(json.dumps(
        {"do_sample": False, "temperature": 0.0, "eos_token_id": 2}))
    return str(path)


PROMPTS = ["the quick brown fox", "1 2 3", "hello world"]


def test_generation_config_and_seed_act_as_in_vllm(hf_model):
    auto = Server(model=hf_model)
    try:  # the file's temperature 0 applies to requests that leave it out, not to the others
        greedy = [complete(auto, p, temperature=0) for p in PROMPTS]
        assert [complete(auto, p, seed=1) for p in PROMPTS] == greedy
        sampled = [complete(auto, p, seed=1, temperature=1) for p in PROMPTS]
        assert sampled != greedy
    finally:
        assert auto.stop() == 0, auto.text()
    assert 'sampling defaults from the model\'s generation_config.json' in auto.text()

    def unseeded(flags):
        server = Server(["--generation-config", "vllm", *flags], model=hf_model)
        try:
            return [complete(server, p) for p in PROMPTS]  # temperature 1, the API's default
        finally:
            assert server.stop() == 0, server.text()

    first = unseeded(["--seed", "5"])
    assert first != greedy
    assert unseeded(["--seed", "5"]) == first  # the same requests in the same order
    assert unseeded(["--seed", "6"]) != first


def test_the_model_argument_as_written_is_a_name_requests_may_give():
    """Without --served-model-name the model is served as its file's name, and also under the
    --model argument as written, which is what vLLM's and SGLang's clients send (they serve a
    model under its path)."""
    stem = os.path.basename(MODEL)[:-len(".gguf")]
    server = Server(served_name=None)
    try:
        status, body = server.get("/v1/models")
        assert [c["id"] for c in json.loads(body)["data"]] == [stem, MODEL]
        for name in (stem, MODEL):
            status, body = server.post("/v1/completions", {"model": name, "prompt": "Hi",
                                                           "max_tokens": 2})
            assert status == 200, body
        status, body = server.post("/v1/completions", {"model": MODEL + "x", "prompt": "Hi"})
        assert status == 404, body
    finally:
        assert server.stop() == 0, server.text()


def test_several_served_model_names_as_in_vllm():
    """--served-model-name a b: requests may name either; responses and /v1/models' first card
    give the first; another name is a 404."""
    server = Server(["--served-model-name", "first-name", "second-name"])
    try:
        status, body = server.get("/v1/models")
        assert [c["id"] for c in json.loads(body)["data"]] == ["first-name", "second-name"]
        for name in ("first-name", "second-name"):
            status, body = server.post("/v1/completions", {"model": name, "prompt": "Hi",
                                                           "max_tokens": 2})
            assert status == 200, body
            assert body["model"] == "first-name"
            assert server.get(f"/v1/models/{name}")[0] == 200
        status, body = server.post("/v1/completions", {"model": "third", "prompt": "Hi"})
        assert status == 404, body
    finally:
        assert server.stop() == 0, server.text()
