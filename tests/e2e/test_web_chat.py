"""The web chat page (web/, served at / by `serve` and `frontend`) in a headless Chromium driven
through the DevTools protocol: the page loads with nothing from the network, the model picker
lists the served model, a typed message streams an answer with tokens per second shown, the stop
button aborts a long answer and the server frees the request, a bad setting shows the server's
400 naming the field, a server with --api-key takes the key typed into the page, the markdown
renderer never turns model text into HTML; screenshots are kept
under the test's tmp dir. The page's files under 64 concurrent fetches while a stream runs."""
import json
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from browser import CHROMIUM, Browser
from conftest import MODEL, SERVED_NAME, STARTED, Server

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="chromium is not installed (scripts/install_deps.sh)")

ASSISTANT = "document.querySelector('.msg.assistant:last-child')"


@pytest.fixture
def browser(tmp_path):
    b = Browser(str(tmp_path / "profile"))
    STARTED.append(b.proc)
    yield b
    b.close()


def set_field(browser, field, value):
    browser.eval(f"document.getElementById({json.dumps(field)}).value = {json.dumps(str(value))}")


def type_and_send(browser, text):
    set_field(browser, "input", text)
    browser.eval("document.getElementById('send').click()")


def answer_text(browser):
    return browser.eval(f"{ASSISTANT} ? {ASSISTANT}.querySelector('.body').textContent : ''")


def wait_done(browser, timeout=120):
    browser.wait(f"{ASSISTANT} && {ASSISTANT}.classList.contains('done')", timeout,
                 "the answer to finish")
    return answer_text(browser)


def open_page(browser, base_url):
    browser.open(base_url + "/")
    browser.wait("document.getElementById('model').options.length > 0", 30, "the model picker")
    assert browser.eval("document.getElementById('model').value") == SERVED_NAME


def test_page_files_served_without_network(server):
    status, html = server.get("/")
    assert status == 200 and "<script src=\"/chat.js\">" in html
    for path in ("/chat.js", "/chat.css"):
        status, text = server.get(path)
        assert status == 200 and len(text) > 500
    with urllib.request.urlopen(server.base_url + "/") as r:
        assert r.headers["Content-Type"].startswith("text/html")
        assert "connect-src 'self'" in r.headers["Content-Security-Policy"]
    for text in (html, server.get("/chat.js")[1], server.get("/chat.css")[1]):
        assert "http://" not in text and "https://" not in text  # no CDNs, fonts or links out


def test_message_streams_answer_with_rate(server, browser, tmp_path):
    ok_before = server.metric("shardlm:request_success_total")
    open_page(browser, server.base_url)
    set_field(browser, "temperature", 0)
    set_field(browser, "max_tokens", 48)
    type_and_send(browser, "What is the capital of France? Answer in one sentence.")
    browser.wait(f"{ASSISTANT} && {ASSISTANT}.querySelector('.body').textContent.length > 0", 60,
                 "the first streamed text")
    text = wait_done(browser)
    assert "Paris" in text, text
    status = browser.eval("document.getElementById('status').textContent")
    assert "tok/s" in status and "finished" in status, status
    assert server.metric("shardlm:request_success_total") == ok_before + 1
    # The conversation continues: the second request carries the history.
    type_and_send(browser, "And of Italy?")
    browser.wait("document.querySelectorAll('.msg.assistant.done').length == 2", 120,
                 "the second answer")
    png = browser.screenshot(tmp_path / "chat.png")
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert not browser.console, browser.console


def test_stop_aborts_the_request_and_frees_it(server, browser, tmp_path):
    aborted_before = server.metric("shardlm:request_success_total", finished_reason="abort")
    open_page(browser, server.base_url)
    set_field(browser, "temperature", 0)
    set_field(browser, "max_tokens", 3000)
    type_and_send(browser, "Count from 1 to 1000, one number per line.")
    browser.wait(f"{ASSISTANT}.querySelector('.body').textContent.length > 10", 60,
                 "the long answer to start")
    assert server.metric("shardlm:num_requests_running") == 1
    assert browser.eval("document.getElementById('send').disabled")
    browser.eval("document.getElementById('stop').click()")
    browser.wait(f"{ASSISTANT}.classList.contains('done')", 10, "the page to stop")
    assert "(stopped)" in browser.eval("document.getElementById('status').textContent")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server.metric("shardlm:num_requests_running") != 0:
        time.sleep(0.05)
    assert server.metric("shardlm:num_requests_running") == 0
    assert server.metric("shardlm:kv_cache_usage_perc") == 0
    assert server.metric("shardlm:request_success_total",
                         finished_reason="abort") == aborted_before + 1
    browser.screenshot(tmp_path / "stopped.png")
    # The server keeps serving, and so does the page.
    set_field(browser, "max_tokens", 8)
    type_and_send(browser, "Say hello.")
    browser.wait("document.querySelectorAll('.msg.assistant.done').length == 2", 60,
                 "an answer after the stop")
    assert answer_text(browser)


def test_bad_setting_shows_the_servers_400(server, browser):
    open_page(browser, server.base_url)
    set_field(browser, "temperature", -3)
    type_and_send(browser, "Hello")
    browser.wait(f"{ASSISTANT} && {ASSISTANT}.classList.contains('error')", 30, "the error")
    text = answer_text(browser)
    assert text.startswith("400") and "temperature" in text, text
    assert not browser.eval("document.getElementById('send').disabled")


def test_markdown_renderer_never_makes_html_from_model_text(server, browser):
    open_page(browser, server.base_url)
    rendered = browser.eval("""(() => {
      const d = document.createElement('div');
      renderMarkdown(d, '# Title\\n<img src=x onerror="window.pwned=1"> **bold** and `a<b`\\n\\n'
                        + '- one\\n- two\\n\\n```python\\nprint("<script>")\\n```\\n');
      return {html: d.innerHTML, imgs: d.querySelectorAll('img,script').length,
              code: d.querySelector('pre code').textContent, lang: d.querySelector('pre .lang').textContent,
              strong: d.querySelector('strong').textContent, items: d.querySelectorAll('li').length,
              heading: d.querySelector('h3').textContent};
    })()""")
    assert rendered["imgs"] == 0, rendered["html"]
    assert "&lt;img" in rendered["html"]
    assert rendered["code"] == 'print("<script>")' and rendered["lang"] == "python"
    assert rendered["strong"] == "bold" and rendered["items"] == 2 and rendered["heading"] == "Title"
    assert not browser.eval("window.pwned === 1")


def test_page_files_under_64_concurrent_fetches_while_streaming(server):
    body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "Tell a story."}],
            "max_tokens": 64, "stream": True}
    req = urllib.request.Request(server.base_url + "/v1/chat/completions",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    result = {}
    streamer = threading.Thread(
        target=lambda: result.update(text=urllib.request.urlopen(req, timeout=120).read()))
    streamer.start()
    with ThreadPoolExecutor(64) as pool:
        pages = list(pool.map(lambda i: server.get(("/", "/chat.js", "/chat.css")[i % 3]),
                              range(192)))
    streamer.join()
    assert all(status == 200 for status, _ in pages)
    assert b"data: [DONE]" in result["text"]


def test_frontend_serves_the_page_and_streams_through_a_worker(tmp_path, browser):
    from test_fleet import ETCD, NATS, Etcd, Frontend, Nats, worker
    if not (os.path.exists(ETCD) and os.path.exists(NATS)):
        pytest.skip("etcd-server and nats-server are not installed (scripts/install_deps.sh)")
    etcd, nats = Etcd(tmp_path), Nats()
    try:
        w = worker(MODEL, etcd, nats)
        fe = Frontend(etcd, nats)
        fe.wait_workers(1)
        open_page(browser, fe.base_url)
        set_field(browser, "temperature", 0)
        set_field(browser, "max_tokens", 32)
        type_and_send(browser, "What is the capital of France? Answer in one sentence.")
        assert "Paris" in wait_done(browser)
        assert "tok/s" in browser.eval("document.getElementById('status').textContent")
        browser.screenshot(tmp_path / "frontend.png")
        # Stop through the frontend: the worker sees the relay end and frees the request.
        set_field(browser, "max_tokens", 3000)
        type_and_send(browser, "Count from 1 to 1000, one number per line.")
        browser.wait(f"{ASSISTANT}.querySelector('.body').textContent.length > 10", 60,
                     "the long answer to start")
        browser.eval("document.getElementById('stop').click()")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and w.metric("shardlm:num_requests_running") != 0:
            time.sleep(0.05)
        assert w.metric("shardlm:num_requests_running") == 0
        assert w.metric("shardlm:generation_tokens_total") < 2000
        fe.stop()
        w.stop()
    finally:
        etcd.stop()
        nats.stop()


def test_api_key_typed_into_the_page(browser):
    s = Server(extra_args=["--api-key", "sekret"])
    try:
        browser.open(s.base_url + "/")  # the page itself needs no key
        browser.wait("document.getElementById('status').textContent.includes('401')", 30,
                     "the models error")
        assert "API key" in browser.eval("document.getElementById('status').textContent")
        browser.eval("const k = document.getElementById('api_key'); k.value = 'sekret';"
                     "k.dispatchEvent(new Event('change'))")
        browser.wait("document.getElementById('model').options.length > 0", 30, "the models")
        set_field(browser, "max_tokens", 8)
        type_and_send(browser, "Hello")
        assert wait_done(browser)
        assert not browser.eval(f"{ASSISTANT}.classList.contains('error')")
    finally:
        assert s.stop() == 0, s.text()
