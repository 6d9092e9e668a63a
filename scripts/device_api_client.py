"""The client of scripts/device_api.sh (stdlib only, so it runs on the bare GPU machine): constrained
requests on CUDA checked for validity, and their TPOT against free ones. Prints ok/FAIL lines."""
import json
import os
import threading
import time
import urllib.request

BASE = "http://127.0.0.1:" + os.environ["PORT"]
# Strings bounded by a pattern, arrays by maxItems (a sliced model would write forever), as
# tests/e2e/test_structured_output.py bounds them.
WORD = {"type": "string", "pattern": "^[a-zA-Z0-9 ]{0,8}$"}
SCHEMA = {
    "type": "object",
    "properties": {"name": WORD, "age": {"type": "integer", "minimum": 0, "maximum": 999},
                   "tags": {"type": "array", "items": WORD, "maxItems": 3}},
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


def post(body, path="/v1/chat/completions"):
    req = urllib.request.Request(BASE + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=200).read())


def chat(content, **extra):
    return dict({"messages": [{"role": "user", "content": content}], "max_tokens": 96}, **extra)


def wait_ready():
    for _ in range(600):
        try:
            urllib.request.urlopen(BASE + "/health", timeout=1)
            return
        except Exception:
            time.sleep(0.5)
    raise SystemExit("FAIL server never became ready")


def valid(text):
    try:
        v = json.loads(text)
    except ValueError:
        return False
    return (isinstance(v.get("name"), str) and isinstance(v.get("age"), int)
            and isinstance(v.get("tags"), list) and all(isinstance(t, str) for t in v["tags"]))


def concurrent_schema():
    results, threads = [], []
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}

    def one(i):
        if i % 2:
            body = chat("Describe person %d as JSON." % i, response_format=fmt, temperature=0.8,
                        seed=i, max_tokens=200)
            choice = post(body)["choices"][0]
            text = choice["message"]["content"]
            results.append(("schema", choice["finish_reason"] == "stop" and valid(text), text))
        else:
            body = chat("Tell me about the number %d." % i, temperature=0.8, seed=i)
            results.append(("free", True, post(body)["choices"][0]["message"]["content"]))

    for i in range(64):
        threads.append(threading.Thread(target=one, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join()
    bad = [r for r in results if not r[1]]
    n_schema = sum(1 for r in results if r[0] == "schema")
    print(("ok" if not bad and len(results) == 64 else "FAIL"),
          "json_schema beside free requests: %d answers, %d constrained, %d invalid %s"
          % (len(results), n_schema, len(bad), [b[2][:80] for b in bad[:3]]))


def choice_and_tool():
    r = post(chat("Pick one.", guided_choice=["red", "green", "blue"], temperature=1.0))
    c = r["choices"][0]["message"]["content"]
    print("ok" if c in ("red", "green", "blue") else "FAIL", "guided_choice ->", repr(c))
    tool = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
    tool["function"]["parameters"]["properties"]["city"] = WORD
    r = post(chat("Weather in Paris?", tools=[tool], tool_choice="required", max_tokens=300))
    choice = r["choices"][0]
    calls = choice["message"].get("tool_calls") or []
    ok = bool(calls) and isinstance(json.loads(calls[0]["function"]["arguments"]).get("city"), str)
    print("ok" if ok else "FAIL", "tool_choice required ->", choice["finish_reason"],
          json.dumps(calls)[:160])


def tpot(extra, seed=3):
    """Seconds per streamed token (first token excluded) of one streamed answer of 160 tokens."""
    body = chat("Write a long list of people as JSON.", stream=True, max_tokens=160,
                temperature=0.7, seed=seed, **extra)
    req = urllib.request.Request(BASE + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    times = []
    with urllib.request.urlopen(req, timeout=200) as resp:
        for line in resp:
            if line.startswith(b"data: ") and line.strip() != b"data: [DONE]":
                times.append(time.perf_counter())
    return (times[-1] - times[1]) / max(1, len(times) - 2), len(times)


def tpot_batch(extra, n):
    """The median over n streams started together of each stream's TPOT, and the fewest chunks."""
    start = threading.Barrier(n)
    results = []

    def one(i):
        start.wait()
        results.append(tpot(extra, seed=100 + i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(r[0] for r in results)[len(results) // 2], min(r[1] for r in results)


def main():
    wait_ready()
    if not os.environ.get("TPOT_ONLY"):
        concurrent_schema()
        choice_and_tool()
    # minItems: the answer runs to max_tokens (a random model would close the array anywhere).
    fmt = {"type": "json_schema", "json_schema": {"name": "people", "schema": {
        "type": "array", "items": SCHEMA, "minItems": 12}}}
    free, constrained = [], []
    for _ in range(3):  # alternated, medians
        free.append(tpot({"ignore_eos": True})[0])
        constrained.append(tpot({"response_format": fmt})[0])
    f, c = sorted(free)[1], sorted(constrained)[1]
    print("tpot batch 1 (%s): free %.2f ms, json_schema %.2f ms, ratio %.2f"
          % (os.environ.get("MODEL_NAME", "?"), f * 1e3, c * 1e3, c / f))
    n = int(os.environ.get("TPOT_BATCH", "32"))
    free, constrained = [], []
    for _ in range(3):  # alternated, medians
        free.append(tpot_batch({"ignore_eos": True}, n))
        constrained.append(tpot_batch({"response_format": fmt}, n))
    f, c = sorted(free)[1], sorted(constrained)[1]
    print("tpot batch %d (%s): free %.2f ms, json_schema %.2f ms, ratio %.2f (fewest chunks %d/%d)"
          % (n, os.environ.get("MODEL_NAME", "?"), f[0] * 1e3, c[0] * 1e3, c[0] / f[0],
             min(x[1] for x in free), min(x[1] for x in constrained)))


main()
