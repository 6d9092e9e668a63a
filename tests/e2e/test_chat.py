"""/v1/chat/completions through the official openai client."""
import json
import subprocess

from conftest import BINARY, MODEL, SERVED_NAME

MESSAGES = [{"role": "user", "content": "Give me three tips for staying healthy."}]


def chat(client, **kw):
    return client.chat.completions.create(model=SERVED_NAME, messages=MESSAGES, temperature=0,
                                          **kw)


def test_chat_answer_and_usage(client, server, tmp_path):
    r = chat(client, max_tokens=48)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    msg = r.choices[0].message
    assert msg.role == "assistant"
    assert any(w in msg.content.lower() for w in ("water", "sleep", "exercise", "diet")), msg
    (tmp_path / "m.json").write_text(json.dumps(MESSAGES))
    rendered = subprocess.run(
        [BINARY, "render-template", "--model", MODEL, "--messages", str(tmp_path / "m.json"),
         "--add-generation-prompt"], check=True, capture_output=True, text=True).stdout
    assert r.usage.prompt_tokens == len(server.tokenize(rendered, add_special_tokens=False))
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream(client):
    whole = chat(client, max_completion_tokens=20).choices[0].message.content
    chunks = list(chat(client, max_completion_tokens=20, stream=True,
                       stream_options={"include_usage": True}))
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_content_parts_equal_string(client):
    parts = [{"role": "user", "content": [{"type": "text", "text": MESSAGES[0]["content"]}]}]
    a = client.chat.completions.create(model=SERVED_NAME, messages=parts, temperature=0,
                                       max_tokens=10).choices[0].message.content
    assert a == chat(client, max_tokens=10).choices[0].message.content


def test_chat_logprobs_and_n(client):
    r = chat(client, max_tokens=5, logprobs=True, top_logprobs=2, n=2)
    assert len(r.choices) == 2
    for c in r.choices:
        entries = c.logprobs.content
        assert len(entries) == 5
        assert all(len(e.top_logprobs) == 2 and e.logprob <= 0 for e in entries)
        assert all(bytes(e.bytes).decode("utf-8", "replace") == e.token for e in entries
                   if "\ufffd" not in e.token)
