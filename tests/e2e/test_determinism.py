"""The guarantee: on the CPU, a greedy or seeded request gives bit-identical logprobs and tokens
whether its prompt is computed in one prefill, found in the prefix cache (first call, then
repeats), split into chunks (--max-num-batched-tokens), or run beside other requests."""
import concurrent.futures

from conftest import SERVED_NAME, Server

PROMPT = ("The history of the Roman Empire spans many centuries, from the founding of the city "
          "to the fall of Constantinople. ") * 4


def ask(server, prompt, **kw):
    status, body = server.post("/v1/completions", {
        "model": SERVED_NAME, "prompt": prompt, "max_tokens": 12, "temperature": 0,
        "logprobs": 2, "ignore_eos": True, **kw})
    assert status == 200, body
    c = body["choices"][0]
    return c["text"], c["logprobs"]["token_logprobs"], c["logprobs"]["top_logprobs"]


def test_cache_hits_chunking_and_batching_do_not_change_logprobs():
    whole = Server(threads=2)
    try:
        first = ask(whole, PROMPT)  # computed in one prefill
        assert ask(whole, PROMPT) == first  # the prompt now comes from the prefix cache
        # A cached prefix plus a new suffix: the suffix's first token sees the same values as in a
        # whole prefill of the longer prompt (checked on a fresh server below).
        extended = ask(whole, PROMPT + " In summary,")
        seeded = ask(whole, PROMPT, temperature=0.8, seed=11)
        assert ask(whole, PROMPT, temperature=0.8, seed=11) == seeded
        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # beside seven other requests
            others = [pool.submit(ask, whole, f"Unrelated prompt {i} about the sea")
                      for i in range(7)]
            batched = pool.submit(ask, whole, PROMPT)
            assert batched.result() == first
            [o.result() for o in others]
    finally:
        assert whole.stop() == 0
    chunked = Server(["--max-num-batched-tokens", "24", "--no-prefix-caching"], threads=2)
    try:
        assert ask(chunked, PROMPT) == first
        assert ask(chunked, PROMPT + " In summary,") == extended
        assert ask(chunked, PROMPT, temperature=0.8, seed=11) == seeded
    finally:
        assert chunked.stop() == 0
