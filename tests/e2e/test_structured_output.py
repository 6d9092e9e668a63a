"""Structured output through a real `shardlm serve` on a tiny random model (whose free output is
noise): response_format json_schema through the official openai client on 20 schemas of varied
shape (non-streaming and streaming, greedy and sampled), every answer validated with jsonschema;
vLLM's guided_regex / guided_choice / guided_grammar and SGLang's regex, 64 requests at once;
bad constraints answer 400 naming the field and the server keeps serving; --grammar-backend none
refuses constrained requests. Also the prompt logprobs of echo + logprobs."""
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest

from conftest import Server

TOOL = os.environ.get("SHARDLM_TINY_MODEL_TOOL", "build/tests/shardlm_tiny_model")
EOS = "<|eos|>"  # the tiny model's EOS is no control token: its text ends the output

# Strings are bounded (a random model would write forever); ASCII, because a random model emits
# bytes that are not UTF-8, which the server's answer replaces (U+FFFD) and maxLength would count.
S = {"type": "string", "pattern": "^[a-zA-Z0-9 ]{0,8}$"}
I = {"type": "integer", "minimum": -50, "maximum": 999}
B = {"type": "boolean"}


def obj(props, required=None):
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required,
            "additionalProperties": False}


SCHEMAS = [
    obj({"name": S}),
    obj({"ok": B}),
    obj({"count": I}),
    obj({"color": {"enum": ["red", "green", "blue"]}}),
    obj({"name": S, "age": I, "admin": B}),
    obj({"tags": {"type": "array", "items": S, "maxItems": 3}}),
    obj({"point": obj({"x": I, "y": I})}),
    obj({"items": {"type": "array", "items": obj({"id": I, "done": B}), "minItems": 1,
                   "maxItems": 2}}),
    obj({"kind": {"const": "fixed"}, "value": I}),
    obj({"maybe": {"anyOf": [I, B]}}),
    obj({"nothing": {"type": "null"}}),
    obj({"a": S, "b": S}, required=["a"]),
    obj({"nested": obj({"inner": obj({"leaf": B})})}),
    obj({"level": {"type": "integer", "enum": [1, 2, 3]}}),
    obj({"pair": {"type": "array", "prefixItems": [I, B], "items": False}}),
    obj({"word": {"type": "string", "pattern": "[a-z]{2,5}"}}),
    obj({"code": {"type": "string", "pattern": "^[A-Z]{2,4}$"}}),
    {"type": "array", "items": B, "minItems": 1, "maxItems": 4},
    {"enum": ["alpha", "beta", 7, None]},
    obj({"user": obj({"name": S, "roles": {"type": "array", "items": {"enum": ["r", "w"]},
                                           "maxItems": 2}})}),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("so") / "tiny.gguf")
    subprocess.run([TOOL, path, "--untied"], check=True)
    return path


@pytest.fixture(scope="module")
def srv(tiny):
    s = Server(model=tiny, threads=2)
    yield s
    rc = s.stop()
    assert rc == 0, s.text()


@pytest.fixture(scope="module")
def oai(srv):
    import openai
    return openai.OpenAI(base_url=srv.base_url + "/v1", api_key="unused", max_retries=0,
                         timeout=120)


def strip_eos(text):
    return text.split(EOS)[0]


def chat_json(oai, schema, i, stream):
    fmt = {"type": "json_schema", "json_schema": {"name": f"s{i}", "schema": schema}}
    args = dict(model="smollm2", messages=[{"role": "user", "content": f"item {i}"}],
                response_format=fmt, max_tokens=400, temperature=[0, 1][i % 2], seed=i)
    if not stream:
        r = oai.chat.completions.create(**args)
        return r.choices[0].message.content, r.choices[0].finish_reason
    text, reason = "", None
    for chunk in oai.chat.completions.create(stream=True, **args):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            reason = chunk.choices[0].finish_reason or reason
    return text, reason


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_outputs_validate(oai, stream):
    for i, schema in enumerate(SCHEMAS):
        text, reason = chat_json(oai, schema, i, stream)
        assert reason == "stop", (i, text)
        value = json.loads(strip_eos(text))  # strict: control characters would fail here
        jsonschema.validate(value, schema)


def test_json_object(oai):
    r = oai.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "x"}],
                                    response_format={"type": "json_object"}, max_tokens=400,
                                    temperature=0)
    if r.choices[0].finish_reason == "stop":
        json.loads(strip_eos(r.choices[0].message.content))


def complete(srv, body):
    return srv.post("/v1/completions", {"model": "smollm2", "prompt": "go", **body})


def test_guided_fields_at_64_concurrent_requests(srv):
    regex = r"[a-f]{2,4}-[0-9]{1,3}(x|yz)"
    choices = ["yes", "no", "not sure"]
    kinds = [({"guided_regex": regex}, lambda t: re.fullmatch(regex, t)),
             ({"regex": regex}, lambda t: re.fullmatch(regex, t)),
             ({"guided_choice": choices}, lambda t: t in choices),
             ({"guided_grammar": 'root ::= "(" [0-9] ("+" [0-9])? ")"'},
              lambda t: re.fullmatch(r"\([0-9](\+[0-9])?\)", t))]

    def one(i):
        body, check = kinds[i % len(kinds)]
        status, r = complete(srv, {**body, "max_tokens": 64, "temperature": [0, 1][i % 2],
                                   "seed": i})
        assert status == 200, r
        text = strip_eos(r["choices"][0]["text"])
        assert r["choices"][0]["finish_reason"] == "stop" and check(text), (body, text)
        return text

    with ThreadPoolExecutor(64) as pool:
        texts = list(pool.map(one, range(128)))
    assert len(set(texts)) > len(kinds)  # sampling varies within each constraint


@pytest.mark.parametrize("body,field,words", [
    ({"guided_json": {"type": "frobnicate"}}, "guided_json", "frobnicate"),
    ({"guided_json": "{not json"}, "guided_json", "JSON schema"),
    ({"guided_regex": "(ab"}, "guided_regex", "parenthesis"),
    ({"guided_grammar": "root ::= ("}, "guided_grammar", "EBNF"),
    ({"guided_choice": []}, "guided_choice", "non-empty"),
    ({"response_format": {"type": "json_schema"}}, "response_format", "schema"),
    ({"response_format": {"type": "yaml"}}, "response_format", "yaml"),
    ({"guided_regex": "a", "guided_choice": ["b"]}, "guided_choice", "only one"),
])
def test_bad_constraints_name_the_field(srv, body, field, words):
    status, r = complete(srv, {**body, "max_tokens": 4})
    assert status == 400 and r["error"]["param"] == field and words in r["error"]["message"], r
    status, r = complete(srv, {"max_tokens": 2})  # still serving
    assert status == 200, r


def test_echo_logprobs_score_the_prompt(srv):
    status, r = complete(srv, {"prompt": "hello world", "max_tokens": 1, "echo": True,
                               "logprobs": 1, "temperature": 0, "prompt_logprobs": 0})
    assert status == 200, r
    c = r["choices"][0]
    lp = c["logprobs"]
    n_prompt = r["usage"]["prompt_tokens"]
    assert len(lp["tokens"]) == n_prompt + 1 and c["text"].startswith("hello world")
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert all(v <= 0 for v in lp["token_logprobs"][1:])
    assert lp["text_offset"][:3] == [0, 1, 2]
    # vLLM's prompt_logprobs carries the same numbers, keyed by token id.
    plp = c["prompt_logprobs"]
    assert plp[0] is None and len(plp) == n_prompt
    for k in range(1, n_prompt):
        assert min(abs(e["logprob"] - lp["token_logprobs"][k]) for e in plp[k].values()) < 1e-5


def test_unknown_fields_are_named(srv):
    status, r = complete(srv, {"max_tokens": 2, "min_tokens": 1})
    assert status == 400 and r["error"]["param"] == "min_tokens", r


def test_grammar_backend_none_refuses(tiny):
    s = Server(model=tiny, extra_args=["--grammar-backend", "none"])
    try:
        status, r = complete(s, {"guided_regex": "a+", "max_tokens": 2})
        assert status == 400 and r["error"]["param"] == "guided_regex", r
        assert "--grammar-backend" in r["error"]["message"]
        assert complete(s, {"max_tokens": 2})[0] == 200
    finally:
        assert s.stop() == 0, s.text()


def test_logit_bias_forces_a_token(srv):
    status, r = complete(srv, {"max_tokens": 5, "temperature": 1, "logit_bias": {"65": 100},
                               "logprobs": 0, "ignore_eos": True})
    assert status == 200, r
    tokens = r["choices"][0]["logprobs"]["tokens"]
    assert len(tokens) == 5 and len(set(tokens)) == 1, tokens
    status, r = complete(srv, {"max_tokens": 2, "logit_bias": {"99999999": 1}})
    assert status == 400 and r["error"]["param"] == "logit_bias", r
