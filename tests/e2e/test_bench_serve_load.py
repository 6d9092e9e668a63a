"""`shardlm bench serve` at realistic concurrency, checked against an independent client (stdlib
asyncio over raw sockets, counting streams that end in `data: [DONE]`): 128 streams at once give 0
failures in both, and where requests really fail (400s the server sends on purpose) the bench
reports exactly those, and the independent client sees the same ones."""
import asyncio
import json

from conftest import SERVED_NAME
from test_bench_serve import bench


async def stream_one(port, body):
    """(HTTP status, whether the stream ended with data: [DONE]) of one streamed request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 600)
    writer.close()
    status = int(reply.split(b" ", 2)[1])
    return status, b"data: [DONE]" in reply


def independent_client(port, bodies):
    async def run():
        return await asyncio.gather(*(stream_one(port, b) for b in bodies))
    return asyncio.run(run())


def body(prompt, max_tokens):
    return {"model": SERVED_NAME, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
            "temperature": 0, "ignore_eos": True}


def test_128_concurrent_streams_have_no_failures(server, tmp_path):
    report, _ = bench(server.base_url, tmp_path, "--input-len", 16, "--output-len", 8,
                      "--num-prompts", 128, "--max-concurrency", 128, "--request-rate", "inf",
                      "--warmup", 0, timeout=600)
    run = report["runs"][0]
    assert run["failed"] == 0 and run["completed"] == 128, run["errors"]
    assert run["peak_concurrency"] >= 100
    results = independent_client(server.port, [body(f"Story number {i}:", 8) for i in range(128)])
    assert results == [(200, True)] * 128


def test_reported_failures_are_the_real_ones(server, tmp_path):
    # Every third request asks for more tokens than the context holds: the server answers 400.
    lines = [{"prompt": f"Request {i} says", "max_tokens": 10**6 if i % 3 == 0 else 4}
             for i in range(48)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))
    report, _ = bench(server.base_url, tmp_path, "--dataset", "jsonl", "--dataset-path", path,
                      "--num-prompts", 48, "--max-concurrency", 48, "--warmup", 0)
    run = report["runs"][0]
    bench_failed = sorted(r["index"] for r in run["requests"] if not r["ok"])
    results = independent_client(server.port, [body(l["prompt"], l["max_tokens"]) for l in lines])
    real_failed = [i for i, (status, done) in enumerate(results) if not done]
    assert bench_failed == real_failed == list(range(0, 48, 3))
    assert all(results[i][0] == 400 for i in real_failed)
    assert all("HTTP 400" in r["error"] for r in run["requests"] if not r["ok"])
