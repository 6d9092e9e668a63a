"""One sampler on every path, end to end: a seeded sampled request gives the same tokens alone and
beside a request that asks for logprobs (on a GPU that request moves its steps' sampling from the
device to the host, which before issue 15 drew from another RNG), and beside other sampled
requests."""
import concurrent.futures

from conftest import SERVED_NAME

PROMPT = "Once upon a time, in a land far away, there lived"
SEEDED = {"model": SERVED_NAME, "prompt": PROMPT, "max_tokens": 24, "temperature": 1.0,
          "top_p": 0.95, "seed": 2024, "ignore_eos": True}


def seeded(server):
    status, body = server.post("/v1/completions", SEEDED)
    assert status == 200, body
    return body["choices"][0]["text"]


def test_seeded_tokens_do_not_depend_on_a_logprobs_neighbour(server, client):
    alone = seeded(server)
    assert seeded(server) == alone
    # A long logprobs request, already generating when the seeded one arrives and still generating
    # when it ends: every step of the seeded request has the logprobs request beside it.
    stream = client.completions.create(model=SERVED_NAME, prompt="The sea", max_tokens=200,
                                       temperature=0.7, logprobs=2, stream=True,
                                       extra_body={"ignore_eos": True})
    chunks = iter(stream)
    first = next(chunks)
    assert first.choices[0].logprobs is not None
    beside = seeded(server)
    rest = list(chunks)
    assert rest and rest[-1].choices[0].finish_reason == "length"  # it outlived the seeded one
    assert beside == alone


def test_seeded_tokens_do_not_depend_on_sampled_neighbours(server):
    alone = seeded(server)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        others = [pool.submit(server.post, "/v1/completions",
                              {**SEEDED, "seed": 7 + i, "prompt": f"Story {i}:"}) for i in range(3)]
        beside = pool.submit(seeded, server)
        assert beside.result() == alone
        assert all(o.result()[0] == 200 for o in others)
