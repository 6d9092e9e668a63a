"""/v1/completions through the official openai client: plain and streamed, prompt shapes, n, echo,
stop strings, logprobs, seeds and usage counts."""
from conftest import SERVED_NAME

PROMPT = "The capital of France is"


def greedy(client, prompt, **kw):
    return client.completions.create(model=SERVED_NAME, prompt=prompt, temperature=0, **kw)


def test_completion_shape_and_usage(client, server):
    r = greedy(client, PROMPT, max_tokens=8)
    assert r.object == "text_completion" and r.model == SERVED_NAME and r.id.startswith("cmpl-")
    assert len(r.choices) == 1 and r.choices[0].finish_reason == "length"
    assert "Paris" in r.choices[0].text
    assert r.usage.prompt_tokens == len(server.tokenize(PROMPT))
    assert r.usage.completion_tokens == 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + 8


def test_stream_equals_non_stream(client):
    whole = greedy(client, PROMPT, max_tokens=16).choices[0].text
    chunks = list(greedy(client, PROMPT, max_tokens=16, stream=True,
                         stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]


def test_prompt_shapes(client, server):
    ids = server.tokenize(PROMPT)
    by_text = greedy(client, PROMPT, max_tokens=6).choices[0].text
    by_ids = greedy(client, ids, max_tokens=6)
    assert by_ids.choices[0].text == by_text
    many = greedy(client, [PROMPT, "One, two, three,"], max_tokens=6)
    assert [c.index for c in many.choices] == [0, 1]
    assert many.choices[0].text == by_text
    lists = greedy(client, [ids, ids], max_tokens=6)
    assert [c.text for c in lists.choices] == [by_text, by_text]
    assert lists.usage.prompt_tokens == 2 * len(ids)


def test_n_and_echo(client):
    # ignore_eos: a sampled choice may draw EOS early, and the count below wants five tokens each.
    r = client.completions.create(model=SERVED_NAME, prompt=PROMPT, max_tokens=5, n=2, seed=7,
                                  temperature=1.0, echo=True, extra_body={"ignore_eos": True})
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.text.startswith(PROMPT) for c in r.choices)
    assert r.usage.completion_tokens == 10


def test_stop_string_across_tokens(client):
    full = greedy(client, PROMPT, max_tokens=12).choices[0].text
    # A stop string that spans a token boundary: the end of one token and the start of the next.
    cut = full.index("Paris") + 3
    stop = full[cut:cut + 4]
    assert len(stop) == 4
    r = greedy(client, PROMPT, max_tokens=12, stop=[stop, "never-appears"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == full[:cut]
    streamed = "".join(c.choices[0].text for c in
                       greedy(client, PROMPT, max_tokens=12, stop=stop, stream=True))
    assert streamed == full[:cut]


def test_logprobs(client):
    r = greedy(client, PROMPT, max_tokens=4, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 4
    assert "".join(lp.tokens) == r.choices[0].text
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs):
        assert chosen <= 0 and len(top) == 3
        assert abs(max(top.values()) - chosen) < 1e-4  # greedy: the chosen token is the top one
    assert lp.text_offset[0] == 0


def test_seed_reproducible(client):
    kw = dict(max_tokens=12, temperature=1.0, top_p=0.9, seed=1234)
    a = client.completions.create(model=SERVED_NAME, prompt=PROMPT, **kw).choices[0].text
    b = client.completions.create(model=SERVED_NAME, prompt=PROMPT, **kw).choices[0].text
    assert a == b


def test_sampling_parameters_accepted(client):
    r = client.completions.create(
        model=SERVED_NAME, prompt=PROMPT, max_tokens=6, temperature=0.8, top_p=0.9,
        presence_penalty=0.5, frequency_penalty=0.5, user="e2e",
        extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "ignore_eos": True,
                    "stop_token_ids": [2]})
    assert r.choices[0].finish_reason in ("length", "stop")
