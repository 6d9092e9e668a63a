"""SIGTERM/SIGINT: requests in flight end with a proper final chunk, new ones are refused, and the
server exits 0. /metrics on its own port; /health and /version."""
import json
import re
import signal
import threading
import urllib.request

from conftest import SERVED_NAME, Server


def stream_lines(server, body, out):
    req = urllib.request.Request(server.base_url + "/v1/completions",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        for line in r:
            out.append(line.decode().strip())


def test_shutdown_ends_streams_and_exits_zero():
    s = Server(["--shutdown-grace", "0.5", "--metrics-port", "0"])
    assert s.get("/health")[0] == 200
    assert json.loads(s.get("/version")[1])["version"]
    metrics_port = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", s.text()).group(1)
    metrics = s.get("/metrics", f"http://127.0.0.1:{metrics_port}")[1]
    assert "shardlm:kv_cache_usage_perc" in metrics
    lines = []
    body = {"model": SERVED_NAME, "prompt": "Tell me a long story.", "max_tokens": 3000,
            "temperature": 0, "stream": True, "ignore_eos": True}
    t = threading.Thread(target=stream_lines, args=(s, body, lines))
    t.start()
    while not any(l.startswith("data: {") for l in lines):
        t.join(0.05)
    assert s.stop(signal.SIGINT) == 0
    t.join(30)
    data = [l for l in lines if l.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    final = json.loads(data[-2][len("data: "):])
    assert final["choices"][0]["finish_reason"] == "abort"
    assert "server stopped" in s.text()
