"""Launch commands written for the engines shardlm replaces work unchanged: SGLang's
`--model-path`, vLLM/SGLang's `--trust-remote-code` and FastDeploy's `--engine-worker-queue-port`
are accepted (the last two named in the log as having no effect here), SGLang's
`--enable-dp-attention` is refused saying what to drop; `doctor` takes serve's
flags, so one command line runs both, and its --help shows its real --dist-timeout default."""
import json
import os
import re
import subprocess
import time
import urllib.request

from conftest import BINARY, MODEL


def test_peer_flags_start_a_server():
    proc = subprocess.Popen([BINARY, "serve", "--model-path", MODEL, "--trust-remote-code",
                             "--engine-worker-queue-port", "8002", "--port", "0", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = ""
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"on http://127\.0\.0\.1:(\d+) ", log)):
            assert time.monotonic() < deadline and proc.poll() is None, log
            log += proc.stdout.readline()
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
                          "--max-model-len", "4096", "--no-prefix-caching", "--no-model"],
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
