#!/usr/bin/env python3
"""An independent load client (stdlib asyncio over raw sockets, no shared code with shardlm):
N streamed completions at once against an OpenAI-compatible server; prints how many ended with
`data: [DONE]`, the HTTP statuses, the output tokens per second and the median time to the first
byte of a token. Used beside `shardlm bench serve` to check that its failures are real.

  scripts/stream_client.py --port 8000 --streams 256 --max-tokens 64 [--prompt-words 100]
"""
import argparse
import asyncio
import collections
import json
import statistics
import time


async def one(args, i):
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(args.host, args.port)
        prompt = " ".join(f"word{(i * 7 + j) % 50}" for j in range(args.prompt_words))
        body = json.dumps({"model": args.model, "prompt": prompt, "max_tokens": args.max_tokens,
                           "stream": True, "ignore_eos": True, "temperature": 0}).encode()
        writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        first, chunks, done = None, 0, False
        while line := await asyncio.wait_for(reader.readline(), args.timeout):
            if line.startswith(b"data: [DONE]"):
                done = True
            elif line.startswith(b"data: "):
                chunks += 1
                first = first or time.monotonic() - start
        writer.close()
        return status, done, chunks, first
    except Exception as e:  # noqa: BLE001 - every failure is counted, with its kind
        return type(e).__name__, False, 0, None


async def main(args):
    t0 = time.monotonic()
    results = await asyncio.gather(*(one(args, i) for i in range(args.streams)))
    elapsed = time.monotonic() - t0
    statuses = collections.Counter(r[0] for r in results)
    done = sum(1 for r in results if r[1])
    firsts = [r[3] for r in results if r[3] is not None]
    print(json.dumps({"streams": args.streams, "done": done, "statuses": dict(statuses),
                      "chunks": sum(r[2] for r in results), "seconds": round(elapsed, 2),
                      "chunks_per_s": round(sum(r[2] for r in results) / elapsed, 1),
                      "ttft_p50_s": round(statistics.median(firsts), 3) if firsts else None}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--model", default="")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt-words", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=600)
    asyncio.run(main(ap.parse_args()))
