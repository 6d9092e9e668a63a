"""A client that goes away mid-stream has its request aborted and its KV blocks freed."""
import http.client
import json
import time

from conftest import SERVED_NAME


def test_disconnect_mid_stream_frees_blocks(server):
    aborted_before = server.metric("shardlm:request_success_total", finished_reason="abort")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = {"model": SERVED_NAME, "prompt": "Count from one to a thousand:", "max_tokens": 2000,
            "temperature": 0, "stream": True, "ignore_eos": True}
    conn.request("POST", "/v1/completions", json.dumps(body),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    for _ in range(5):  # a few chunks arrive: the request is running and holds KV blocks
        assert resp.readline()
    assert server.metric("shardlm:num_requests_running") == 1
    assert server.metric("shardlm:kv_cache_usage_perc") > 0
    conn.sock.close()
    conn.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (server.metric("shardlm:num_requests_running") == 0
                and server.metric("shardlm:kv_cache_usage_perc") == 0):
            break
        time.sleep(0.05)
    assert server.metric("shardlm:num_requests_running") == 0
    assert server.metric("shardlm:kv_cache_usage_perc") == 0
    assert server.metric("shardlm:request_success_total",
                         finished_reason="abort") == aborted_before + 1
    assert server.metric("shardlm:generation_tokens_total") < 1000  # it did not run to the end
