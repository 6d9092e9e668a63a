"""Batching must not change results: 32 concurrent greedy streams give the same text as the same
requests run one at a time. Prefix-cache hits show in /metrics."""
from concurrent.futures import ThreadPoolExecutor

from conftest import SERVED_NAME

SUBJECTS = ["the sea", "a cat", "winter", "music", "the moon", "bread", "a city", "rain"]
PROMPTS = [f"Write one sentence about {SUBJECTS[i % 8]}, number {i}:" for i in range(32)]


def run(client, prompt, max_tokens):
    chunks = client.completions.create(model=SERVED_NAME, prompt=prompt, max_tokens=max_tokens,
                                       temperature=0, stream=True, extra_body={"ignore_eos": True})
    return "".join(c.choices[0].text for c in chunks if c.choices)


def test_32_concurrent_streams_equal_sequential(client, server):
    sequential = [run(client, p, 24) for p in PROMPTS]
    with ThreadPoolExecutor(max_workers=32) as pool:
        concurrent = list(pool.map(lambda p: run(client, p, 24), PROMPTS))
    assert server.metric("shardlm:request_success_total") >= 64
    for p, a, b in zip(PROMPTS, sequential, concurrent):
        assert a == b, p
    assert server.metric("shardlm:num_requests_running") == 0
    assert "Running:" in server.text()  # the periodic stats line


def test_prefix_cache_hits_in_metrics(client, server):
    shared = "You are a careful assistant. " * 20  # several full KV blocks
    before = server.metric("shardlm:prefix_cache_hits_total")
    for tail in ("Say hello.", "Say goodbye."):
        client.completions.create(model=SERVED_NAME, prompt=shared + tail, max_tokens=2,
                                  temperature=0)
    hits = server.metric("shardlm:prefix_cache_hits_total") - before
    assert hits >= 16 * 5, hits  # the second request reuses the shared prefix's blocks
    assert server.metric("shardlm:prefix_cache_queries_total") > 0
