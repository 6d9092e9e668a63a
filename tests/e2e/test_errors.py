"""Every class of bad input gets an OpenAI-style error with the right status, and the server goes on
serving."""
import json
import urllib.request

import pytest

from conftest import SERVED_NAME, Server


def check_error(status, body, want_status, param=None):
    assert status == want_status, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if param is not None:
        assert err["param"] == param, err


GOOD = {"model": SERVED_NAME, "prompt": "Hello", "max_tokens": 2}


@pytest.mark.parametrize("body,param", [
    ({**GOOD, "max_tokens": "ten"}, "max_tokens"),
    ({**GOOD, "temperature": -1}, "temperature"),
    ({**GOOD, "top_p": 1.5}, "top_p"),
    ({**GOOD, "n": 0}, "n"),
    ({**GOOD, "stream": "yes"}, "stream"),
    ({**GOOD, "stop": [1, 2]}, "stop"),
    ({**GOOD, "logprobs": 50}, "logprobs"),
    ({**GOOD, "prompt": {"text": "hi"}}, "prompt"),
    ({**GOOD, "prompt": [10**12]}, "prompt"),
    ({"model": SERVED_NAME, "max_tokens": 2}, "prompt"),
])
def test_bad_completion_fields(server, body, param):
    check_error(*server.post("/v1/completions", body), 400, param)


def test_bad_chat_fields(server):
    check_error(*server.post("/v1/chat/completions", {"model": SERVED_NAME, "messages": []}),
                400, "messages")
    check_error(*server.post("/v1/chat/completions", {"messages": [{"content": "no role"}]}),
                400, "messages")
    check_error(*server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}),
        400, "messages")
    check_error(*server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}), 400, "top_logprobs")


def test_malformed_json_and_wrong_shape(server):
    check_error(*server.post("/v1/completions", b"{not json"), 400)
    check_error(*server.post("/v1/completions", b"[1, 2]"), 400)


def test_unknown_model(server):
    check_error(*server.post("/v1/completions", {**GOOD, "model": "gpt-9"}), 404, "model")


def test_context_length_exceeded(server):
    status, body = server.post("/v1/completions", {**GOOD, "max_tokens": 10**6})
    check_error(status, body, 400, "max_tokens")
    assert body["error"]["code"] == "context_length_exceeded"
    long_prompt = "word " * 5000
    status, body = server.post("/v1/completions", {**GOOD, "prompt": long_prompt})
    check_error(status, body, 400)


def test_unknown_route(server):
    try:
        urllib.request.urlopen(server.base_url + "/v1/nothing", timeout=10)
    except urllib.error.HTTPError as e:
        check_error(e.code, json.loads(e.read()), 404)


def test_server_keeps_serving(server):
    status, body = server.post("/v1/completions", GOOD)
    assert status == 200 and body["choices"][0]["text"]


@pytest.fixture(scope="module")
def guarded_server():
    s = Server(["--api-key", "sekret", "--max-request-bytes", "4096"])
    yield s
    assert s.stop() == 0


def test_api_key(guarded_server):
    s = guarded_server
    check_error(*s.post("/v1/completions", GOOD), 401)
    check_error(*s.post("/v1/completions", GOOD, {"Authorization": "Bearer wrong"}), 401)
    status, _ = s.post("/v1/completions", GOOD, {"Authorization": "Bearer sekret"})
    assert status == 200
    assert s.get("/health")[0] == 200  # health and metrics need no key
    assert "shardlm:num_requests_running" in s.get("/metrics")[1]


def test_body_too_large(guarded_server):
    big = json.dumps({**GOOD, "prompt": "x" * 10000}).encode()
    check_error(*guarded_server.post("/v1/completions", big,
                                     {"Authorization": "Bearer sekret"}), 413)
    status, _ = guarded_server.post("/v1/completions", GOOD, {"Authorization": "Bearer sekret"})
    assert status == 200
