"""Tool calling on /v1/chat/completions through the official openai client against a real
`shardlm serve` on a tiny random model: tool_choice required and a named function are enforced by
the grammar, so every answer is a parseable tool call whatever the model's judgement (its
arguments validate against the function's parameters), streamed or not, 64 requests at once; a
history with assistant tool_calls and tool messages renders; bad tool fields are 400s naming the
field; --reasoning-parser and --tool-call-parser shape the message."""
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai
import pytest

from conftest import Server

TOOL = os.environ.get("SHARDLM_TINY_MODEL_TOOL", "build/tests/shardlm_tiny_model")

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "pattern": "^[A-Za-z ]{1,8}$"},
                          "unit": {"enum": ["c", "f"]}},
           "required": ["city", "unit"], "additionalProperties": False}
TIME = {"type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"],
        "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "get_time", "parameters": TIME}}]
PARAMS = {"get_weather": WEATHER, "get_time": TIME}
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tools") / "tiny.gguf")
    subprocess.run([TOOL, path, "--untied"], check=True)
    return path


@pytest.fixture(scope="module")
def srv(tiny):
    s = Server(model=tiny, threads=2, extra_args=["--tool-call-parser", "hermes",
                                                  "--reasoning-parser", "qwen3"])
    yield s
    rc = s.stop()
    assert rc == 0, s.text()


@pytest.fixture(scope="module")
def oai(srv):
    return openai.OpenAI(base_url=srv.base_url + "/v1", api_key="unused", max_retries=0,
                         timeout=120)


def check_calls(calls, only=None):
    assert calls, "no tool call"
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name in PARAMS and (only is None or call.function.name == only)
        jsonschema.validate(json.loads(call.function.arguments), PARAMS[call.function.name])


def create(oai, i=0, **kw):
    return oai.chat.completions.create(model="smollm2", messages=MESSAGES, tools=TOOLS,
                                       max_tokens=300, temperature=[0, 1][i % 2], seed=i,
                                       parallel_tool_calls=False, **kw)


def test_required_gives_a_tool_call(oai):
    for i in range(4):
        r = create(oai, i, tool_choice="required")
        assert r.choices[0].finish_reason == "tool_calls", r
        check_calls(r.choices[0].message.tool_calls)
        assert len(r.choices[0].message.tool_calls) == 1  # parallel_tool_calls false


def test_named_function_is_called(oai):
    r = create(oai, 1, tool_choice={"type": "function", "function": {"name": "get_time"}})
    check_calls(r.choices[0].message.tool_calls, only="get_time")


def test_streamed_tool_calls_as_deltas(oai):
    calls, reason, pieces = {}, None, 0
    for chunk in create(oai, 3, tool_choice="required", stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        assert not delta.content  # required: the answer is the call
        for d in delta.tool_calls or []:
            # As OpenAI streams them: id, type and name first, then pieces of the arguments.
            first = d.index not in calls
            assert (d.id is not None) == first and (d.function.name is not None) == first, d
            c = calls.setdefault(d.index, {"id": d.id, "name": "", "arguments": ""})
            c["name"] += d.function.name or ""
            c["arguments"] += d.function.arguments or ""
            pieces += bool(d.function.arguments)
        reason = chunk.choices[0].finish_reason or reason
    assert reason == "tool_calls" and len(calls) == 1
    # How many pieces depends on how many tokens each chunk carries (a busy server coalesces
    # them); tests/unit/test_tool_parsers.cpp checks the pieces at every byte.
    assert pieces >= 1
    (c,) = calls.values()
    assert c["name"] in PARAMS and c["id"].startswith("call_")
    jsonschema.validate(json.loads(c["arguments"]), PARAMS[c["name"]])


def test_64_concurrent_required_requests(oai):
    def one(i):
        r = create(oai, i, tool_choice="required")
        check_calls(r.choices[0].message.tool_calls)
        return r.choices[0].message.tool_calls[0].function.arguments

    with ThreadPoolExecutor(64) as pool:
        args = list(pool.map(one, range(64)))
    assert len(set(args)) > 1


def test_history_with_tool_calls_and_results(oai):
    history = MESSAGES + [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather",
                                      "arguments": "{\"city\": \"Paris\", \"unit\": \"c\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"}]
    r = oai.chat.completions.create(model="smollm2", messages=history, tools=TOOLS,
                                    tool_choice="auto", max_tokens=8)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_auto_and_none_answer(oai):
    for choice in ("auto", "none"):
        r = create(oai, 0, tool_choice=choice)
        msg = r.choices[0].message
        assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
        assert choice == "auto" or not msg.tool_calls
        assert hasattr(msg, "reasoning_content")  # --reasoning-parser qwen3


@pytest.mark.parametrize("kw,field", [
    ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"tool_choice": "required", "response_format": {"type": "json_object"}}, "response_format"),
])
def test_bad_tool_fields_are_named(oai, kw, field):
    with pytest.raises(openai.BadRequestError) as e:
        create(oai, **kw)
    assert e.value.body["param"] == field, e.value.body
    assert create(oai, tool_choice="required").choices[0].message.tool_calls  # still serving


def test_tools_on_completions_are_refused(srv):
    status, r = srv.post("/v1/completions", {"prompt": "x", "tools": TOOLS})
    assert status == 400 and r["error"]["param"] == "tools", r


def test_auto_without_a_parser_is_refused(tiny):
    s = Server(model=tiny)
    try:
        status, r = s.post("/v1/chat/completions", {"messages": MESSAGES, "tools": TOOLS})
        assert status == 400 and r["error"]["param"] == "tool_choice"
        assert "--tool-call-parser" in r["error"]["message"]
        status, r = s.post("/v1/chat/completions", {"messages": MESSAGES, "tools": TOOLS,
                                                    "tool_choice": "required", "max_tokens": 300,
                                                    "parallel_tool_calls": False})
        assert status == 200 and r["choices"][0]["message"]["tool_calls"], r
    finally:
        assert s.stop() == 0, s.text()
