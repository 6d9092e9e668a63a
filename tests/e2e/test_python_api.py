"""The Python package (python/shardlm over the module built in build/python): LLM/SamplingParams
give the same greedy text as `shardlm generate`; a batch of 64 prompts with the progress bar;
chat; token-id prompts; logprobs; stop strings; bad arguments raise ValueError naming the
argument (and the LLM keeps working); the GIL is released while the engine runs; Ctrl-C stops a
batch cleanly; a TP=3 group from Python on the CPU equals one process and leaves no process
behind; the console command runs the binary's CLI."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import BINARY, MODEL
from python_api import python_env, run_script, start_script

TOOL = os.environ.get("SHARDLM_TINY_MODEL_TOOL", "build/tests/shardlm_tiny_model")

PROMPTS = ["The capital of France is", "Write one sentence about the sea:", "1, 2, 3, 4,"]

BATCH_SCRIPT = r"""
import json, sys
from shardlm import LLM, SamplingParams
model, prompts = sys.argv[1], json.loads(sys.argv[2])
llm = LLM(model=model, threads=1, device="cpu")
greedy = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
tok = llm.get_tokenizer()
out = {}
out["text"] = [o.outputs[0].text for o in llm.generate(prompts, greedy, use_tqdm=True)]
out["fastdeploy_style"] = [o.outputs.text for o in llm.generate(prompts, greedy, use_tqdm=False)]
ids = [tok.encode(p) for p in prompts]
out["from_ids"] = [o.outputs[0].text for o in llm.generate(ids, greedy, use_tqdm=False)]
out["from_dicts"] = [o.outputs[0].text for o in llm.generate(
    [{"prompt_token_ids": i} for i in ids], greedy, use_tqdm=False)]
single = llm.generate(prompts[0], greedy, use_tqdm=False)
out["single"] = [len(single), single[0].prompt, single[0].prompt_token_ids == ids[0]]
out["roundtrip"] = tok.decode(ids[1], skip_special_tokens=True)
chat = llm.chat([{"role": "user", "content": "Say hello."}], greedy, use_tqdm=False)
out["chat"] = chat[0].outputs[0].text
out["chat_prompt"] = tok.apply_chat_template([{"role": "user", "content": "Say hello."}])
lp = llm.generate(prompts[0], SamplingParams(temperature=0, max_tokens=5, logprobs=3,
                                            ignore_eos=True), use_tqdm=False)[0].outputs[0]
out["logprobs"] = [len(lp.logprobs), len(lp.token_ids),
                   all(lp.token_ids[i] in lp.logprobs[i] for i in range(5)),
                   all(lp.logprobs[i][lp.token_ids[i]].rank == 1 for i in range(5)),
                   all(len(d) == 3 for d in lp.logprobs), lp.cumulative_logprob < 0]
stop_at = out["text"][2].split()[1]
stopped = llm.generate(prompts[2], SamplingParams(temperature=0, max_tokens=24, stop=[stop_at]),
                       use_tqdm=False)[0].outputs[0]
out["stop"] = [stop_at, stopped.text, stopped.finish_reason]
many = [f"Story number {i}:" for i in range(64)]
mixed = [SamplingParams(temperature=0.8, seed=i, max_tokens=8 + i % 5, ignore_eos=True)
         for i in range(64)]
res = llm.generate(many, mixed, use_tqdm=True)
out["many"] = [[len(r.outputs[0].token_ids), r.outputs[0].finish_reason] for r in res]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def batch():
    rc, out, err = run_script(BATCH_SCRIPT, MODEL, json.dumps(PROMPTS))
    assert rc == 0, err[-4000:]
    return out, err


def cli_greedy(prompts, chat=False):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(prompts) + "\n")
    try:
        args = [BINARY, "generate", "--model", MODEL, "--threads", "1", "--device", "cpu",
                "--prompts-file", f.name, "-n", "24", "--temperature", "0", "--ignore-eos"]
        out = subprocess.run(args + (["--chat"] if chat else []), capture_output=True,
                             text=True, timeout=300, check=True).stdout
    finally:
        os.unlink(f.name)
    return [json.loads(line)["text"] for line in out.splitlines()]


def test_greedy_text_equals_the_cli(batch):
    out, _ = batch
    assert out["text"] == cli_greedy(PROMPTS)
    assert out["fastdeploy_style"] == out["text"]


def test_token_id_and_single_prompts(batch):
    out, _ = batch
    assert out["from_ids"] == out["text"]
    assert out["from_dicts"] == out["text"]
    assert out["single"] == [1, PROMPTS[0], True]
    assert out["roundtrip"] == PROMPTS[1]


def test_chat_applies_the_template(batch):
    out, _ = batch
    assert out["chat"] == cli_greedy(["Say hello."], chat=True)[0]
    assert "<|im_start|>user\nSay hello.<|im_end|>" in out["chat_prompt"]
    assert out["chat_prompt"].endswith("<|im_start|>assistant\n")


def test_logprobs_and_stop_strings(batch):
    out, _ = batch
    assert out["logprobs"] == [5, 5, True, True, True, True]
    stop_at, text, reason = out["stop"]
    assert reason == "stop" and stop_at not in text and out["text"][2].startswith(text)


def test_batch_of_64_with_progress_bar(batch):
    out, err = batch
    assert out["many"] == [[8 + i % 5, "length"] for i in range(64)]
    assert "Processed prompts" in err and "64/64" in err


BAD_SCRIPT = r"""
import json, sys
from shardlm import LLM, SamplingParams
model = sys.argv[1]
errors = []
def expect(fn):
    try:
        fn()
        errors.append("no error")
    except ValueError as e:
        errors.append(str(e))
expect(lambda: SamplingParams(temperature=-1))
expect(lambda: SamplingParams(top_p=0))
expect(lambda: SamplingParams(max_tokens=0))
expect(lambda: SamplingParams(logprobs=50))
expect(lambda: SamplingParams(n=2))
expect(lambda: LLM(model="/nonexistent/model.gguf"))
expect(lambda: LLM(model=model, tensor_parallel_size=0))
expect(lambda: LLM(model=model, gpu_memory_utilization=1.5))
expect(lambda: LLM(model=model, device="tpu"))
expect(lambda: LLM(model=model, tensor_parallel_size=3, ips="10.0.0.1,10.0.0.2"))
llm = LLM(model=model, threads=1, device="cpu", max_model_len=64)
greedy = SamplingParams(temperature=0, max_tokens=4)
expect(lambda: llm.generate(["word " * 200], greedy))
expect(lambda: llm.generate([[1, 2, 10**9]], greedy))
expect(lambda: llm.generate([3.5], greedy))
expect(lambda: llm.generate(["a", "b"], [greedy]))
expect(lambda: llm.chat([{"content": "no role"}], greedy))
expect(lambda: llm.get_tokenizer().decode([10**9]))
ok = llm.generate("Still working?", greedy, use_tqdm=False)[0].outputs[0]
print(json.dumps({"errors": errors, "after": [len(ok.token_ids), ok.finish_reason]}))
"""


def test_bad_arguments_raise_value_error_naming_them():
    rc, out, err = run_script(BAD_SCRIPT, MODEL)
    assert rc == 0, err[-4000:]
    names = ["temperature", "top_p", "max_tokens", "logprobs", "n=", "model=",
             "tensor_parallel_size", "gpu_memory_utilization", "device", "ips",
             "prompt", "vocabulary", "prompts[0]", "sampling_params", "messages[0]",
             "vocabulary"]
    for name, message in zip(names, out["errors"]):
        assert message != "no error" and name in message, (name, message)
    assert len(out["errors"]) == len(names)
    assert out["after"][0] > 0


GIL_SCRIPT = r"""
import json, sys, threading, time
from shardlm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], threads=1, device="cpu")
ticks, done = [0], threading.Event()
def count():
    while not done.is_set():
        ticks[0] += 1
        time.sleep(0.001)
t = threading.Thread(target=count)
t.start()
start = time.monotonic()
llm.generate(["Once upon a time"] * 4, SamplingParams(temperature=0, max_tokens=48,
             ignore_eos=True), use_tqdm=False)
seconds = time.monotonic() - start
done.set()
t.join()
print(json.dumps({"seconds": seconds, "ticks": ticks[0]}))
"""


def test_gil_is_released_while_generating():
    rc, out, err = run_script(GIL_SCRIPT, MODEL)
    assert rc == 0, err[-4000:]
    # A thread that needs the GIL every millisecond keeps running: at least a quarter of the
    # ticks it would make on an idle interpreter (it gets none while the GIL is held).
    assert out["seconds"] > 0.5 and out["ticks"] > out["seconds"] * 250, out


CTRL_C_SCRIPT = r"""
import json, sys, time
from shardlm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], threads=1, device="cpu", max_model_len=2048)
print("loaded", flush=True)
start = time.monotonic()
try:
    llm.generate(["Tell me a long story."] * 8, SamplingParams(temperature=0, max_tokens=2000,
                 ignore_eos=True), use_tqdm=False)
    result = "finished"
except KeyboardInterrupt:
    result = "interrupted"
stopped = time.monotonic() - start
again = llm.generate("Hello", SamplingParams(temperature=0, max_tokens=3, ignore_eos=True),
                     use_tqdm=False)[0].outputs[0]
print(json.dumps({"result": result, "seconds": stopped, "again": len(again.token_ids)}))
"""


def test_ctrl_c_stops_generation_cleanly():
    p = start_script(CTRL_C_SCRIPT, MODEL)
    try:
        assert p.stdout.readline().strip() == "loaded"
        time.sleep(2)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-4000:]
    result = json.loads(out.splitlines()[-1])
    # 8 x 2000 tokens take minutes on one thread; the interrupt ends it within a step or two.
    assert result["result"] == "interrupted" and result["seconds"] < 10, result
    assert result["again"] == 3


TP_SCRIPT = r"""
import json, os, sys
from shardlm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], tensor_parallel_size=3, threads=1, device="cpu", tp_exact=True)
out = [o.outputs[0].text for o in llm.generate(json.loads(sys.argv[2]), SamplingParams(
    temperature=0, max_tokens=24, ignore_eos=True), use_tqdm=False)]
print(json.dumps({"text": out, "master": llm._check_master(),
                  "ranks": [q.pid for q in llm._group.procs]}))
"""


def test_tensor_parallel_group_of_three_from_python(batch):
    p = start_script(TP_SCRIPT, MODEL, json.dumps(PROMPTS))
    try:
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-4000:]
    result = json.loads(out.splitlines()[-1])
    assert result["master"] is True
    assert result["text"] == batch[0]["text"]
    # The two rank processes ended with the script (the master's LLM ended the group).
    assert len(result["ranks"]) == 2
    assert not [pid for pid in result["ranks"] if os.path.exists(f"/proc/{pid}")]


def test_console_command_runs_the_cli():
    env = python_env()
    out = subprocess.run([sys.executable, "-m", "shardlm", "--version"], env=env,
                         capture_output=True, text=True, timeout=60)
    want = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == want.stdout and out.stdout.startswith("shardlm")
    bad = subprocess.run([sys.executable, "-m", "shardlm", "generate", "--no-such-flag"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no-such-flag" in bad.stderr + bad.stdout


GENCFG_SCRIPT = r"""
import json, sys
from shardlm import LLM, SamplingParams
model = sys.argv[1]
prompts = ["the quick brown fox", "1 2 3", "hello world"]
def texts(outs):
    return [o.outputs[0].text for o in outs]
out = {}
llm = LLM(model=model, device="cpu", threads=1)
out["defaults"] = llm.get_default_sampling_params().temperature
out["greedy"] = texts(llm.generate(prompts, SamplingParams(temperature=0, max_tokens=8,
                                                           ignore_eos=True), use_tqdm=False))
# Without sampling_params: the file's temperature 0 (and vLLM's default 16 tokens).
out["default"] = [t[:len(g)] for t, g in zip(texts(llm.generate(prompts, use_tqdm=False)),
                                              out["greedy"])]
llm.shutdown()
def seeded(seed):
    llm = LLM(model=model, device="cpu", threads=1, generation_config="vllm", seed=seed)
    t = texts(llm.generate(prompts, SamplingParams(max_tokens=8, ignore_eos=True),
                           use_tqdm=False))
    llm.shutdown()
    return t
out["seed5"], out["seed5_again"], out["seed6"] = seeded(5), seeded(5), seeded(6)
try:
    LLM(model=model, device="cpu", threads=1, generation_config="/nonexistent")
    out["bad"] = "no error"
except ValueError as e:
    out["bad"] = str(e)
print(json.dumps(out))
"""


def test_generation_config_and_seed_as_in_vllm(tmp_path):
    """LLM(generation_config='auto') samples with the model's generation_config.json when
    generate() gets no sampling_params; LLM(seed=N) makes unseeded prompts repeatable."""
    model = tmp_path / "m"
    subprocess.run([TOOL, str(model), "--hf", "--untied", "--layers", "2"], check=True)
    (model / "generation_config.json").write_text(json.dumps({"temperature": 0.0}))
    rc, out, err = run_script(GENCFG_SCRIPT, model)
    assert rc == 0, err[-4000:]
    assert out["defaults"] == 0.0
    assert out["default"] == out["greedy"]
    assert out["seed5"] == out["seed5_again"]
    assert out["seed5"] != out["seed6"] and out["seed5"] != out["greedy"]
    assert "no generation_config.json there" in out["bad"], out["bad"]
