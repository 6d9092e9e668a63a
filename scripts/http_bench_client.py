#!/usr/bin/env python3
"""An independent HTTP load client for the issue-16 serving figures (stdlib asyncio over raw
sockets; no code shared with shardlm): N streamed completions at once, each with a prompt of about
--input-tokens tokens (calibrated once with a non-streamed request's usage.prompt_tokens) and
exactly --max-tokens output tokens (ignore_eos); each prompt starts with a random per-run salt, so
no run reuses an earlier run's cached prefixes. Counts the streams that end with `data: [DONE]`
after a finish_reason of stop or length (one ended with abort or an error event is not done),
reads each stream's completion_tokens from its usage chunk (stream_options.include_usage), and
prints one JSON line: output tokens per second over the whole run, TTFT p50 (request sent to the
first token's bytes) and TPOT p50 ((last token - first token) / (tokens - 1), per stream).

  scripts/http_bench_client.py --port 8000 --streams 256 --input-tokens 1000 --max-tokens 1000
"""
import argparse
import asyncio
import collections
import json
import os
import statistics
import time


SALT = os.urandom(4).hex()  # per run: no prompt shares a cached prefix with an earlier run's


def prompt_of(i, words):
    return f"{SALT}-{i} " + " ".join(f"w{(i * 7919 + j * 31) % 997}" for j in range(words))


async def post(args, body):
    """Sends one request; yields (arrival time, line) for each line of the body."""
    reader, writer = await asyncio.open_connection(args.host, args.port)
    data = json.dumps(body).encode()
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
    await writer.drain()
    return reader, writer


async def calibrate(args):
    """Words per prompt for about --input-tokens tokens. The probe starts at 200 words and halves
    while the server refuses it as too long for the context (a small model's tokenizer may take
    several tokens a word); any other refusal ends the run with the server's message."""
    words = 200
    while True:
        body = {"model": args.model, "prompt": prompt_of(0, words), "max_tokens": 1}
        reader, writer = await post(args, body)
        raw = await asyncio.wait_for(reader.read(), args.timeout)
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        answer = json.loads(payload) if payload.strip() else {}
        if "usage" in answer:
            return max(1, round(words * args.input_tokens / answer["usage"]["prompt_tokens"]))
        error = answer.get("error", {})
        if error.get("code") == "context_length_exceeded" and words > 1:
            words //= 2
            continue
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        raise SystemExit(f"calibration request refused ({status}): "
                         f"{error.get('message', payload[:300].decode(errors='replace'))}")


async def one(args, i, words):
    start = time.monotonic()
    try:
        body = {"model": args.model, "prompt": prompt_of(i, words), "max_tokens": args.max_tokens,
                "stream": True, "ignore_eos": True, "temperature": 0,
                "stream_options": {"include_usage": True}}
        reader, writer = await post(args, body)
        status = int((await reader.readline()).split()[1])
        first = last = None
        chunks, tokens, done, prompt_tokens, finish = 0, None, False, None, None
        while line := await asyncio.wait_for(reader.readline(), args.timeout):
            if line.startswith(b"data: [DONE]"):
                done = True
            elif line.startswith(b"data: "):
                event = json.loads(line[6:])
                if event.get("error"):
                    finish = "error"
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
                    prompt_tokens = event["usage"]["prompt_tokens"]
                for choice in event.get("choices") or []:
                    finish = choice.get("finish_reason") or finish
                if event.get("choices"):
                    chunks += 1
                    last = time.monotonic() - start
                    first = first if first is not None else last
        writer.close()
        # A stream that the server ended early (finish_reason abort, an error event) is not done.
        done = done and finish in ("stop", "length")
        return (status, done, tokens if tokens is not None else chunks, first, last, prompt_tokens,
                finish)
    except Exception as e:  # noqa: BLE001 - every failure is counted, with its kind
        return type(e).__name__, False, 0, None, None, None, None


async def main(args):
    words = await calibrate(args)
    t0 = time.monotonic()
    results = await asyncio.gather(*(one(args, i, words) for i in range(args.streams)))
    elapsed = time.monotonic() - t0
    done = [r for r in results if r[1]]
    tokens = sum(r[2] for r in done)
    ttft = [r[3] for r in done if r[3] is not None]
    tpot = [(r[4] - r[3]) / (r[2] - 1) for r in done if r[3] is not None and r[2] > 1]
    prompts = [r[5] for r in done if r[5]]
    print(json.dumps({
        "streams": args.streams, "done": len(done),
        "statuses": dict(collections.Counter(str(r[0]) for r in results)),
        "finish_reasons": dict(collections.Counter(str(r[6]) for r in results)),
        "prompt_tokens_p50": statistics.median(prompts) if prompts else None,
        "output_tokens": tokens, "seconds": round(elapsed, 2),
        "output_tok_per_s": round(tokens / elapsed, 1),
        "ttft_p50_s": round(statistics.median(ttft), 3) if ttft else None,
        "tpot_p50_ms": round(1000 * statistics.median(tpot), 2) if tpot else None}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--model", default="")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--input-tokens", type=int, default=1000)
    ap.add_argument("--max-tokens", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=900)
    asyncio.run(main(ap.parse_args()))
