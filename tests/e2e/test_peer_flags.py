"""Launch commands written for the engines shardlm replaces work unchanged: SGLang's
`--model-path`, vLLM/SGLang's `--trust-remote-code` and FastDeploy's `--engine-worker-queue-port`
are accepted (the last two named in the log as having no effect here)."""
import json
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
