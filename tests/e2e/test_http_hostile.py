"""The HTTP layer under hostile input and load, with raw sockets (no client library to smooth
things over): nesting bombs, chunked bodies past the limit, slow headers, connection bursts,
pipelining, wrong methods, clients that leave while a non-streaming request generates."""
import json
import select
import socket
import threading
import time

import pytest

from conftest import SERVED_NAME, Server

GOOD = {"model": SERVED_NAME, "prompt": "Hello", "max_tokens": 2, "temperature": 0}


@pytest.fixture(scope="module")
def hserver():
    s = Server(["--max-request-bytes", "262144", "--http-header-timeout", "2",
                "--http-body-timeout", "2", "--max-num-seqs", "8"])
    yield s
    assert s.stop() == 0, s.text()


def connect(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def read_response(f):
    """(status, headers, body bytes) of one response from a socket file."""
    status_line = f.readline()
    assert status_line, "the connection closed without a response"
    status = int(status_line.split()[1])
    headers = {}
    while (line := f.readline().rstrip(b"\r\n")):
        name, value = line.decode().split(":", 1)
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while (size := int(f.readline().strip(), 16)):
            body += f.read(size)
            f.readline()
        f.readline()
    else:
        body = f.read(int(headers.get("content-length", 0)))
    return status, headers, body


def raw(server, data):
    with connect(server) as s:
        s.sendall(data)
        return read_response(s.makefile("rb"))


def post_bytes(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def healthy(server):
    status, body = server.post("/v1/completions", GOOD)
    return status == 200 and body["choices"][0]["text"] is not None


@pytest.mark.parametrize("field", ["max_tokens", "n", "seed", "stop", "logprobs"])
def test_nesting_bomb_is_a_400(hserver, field):
    depth = 60000
    body = ('{"model": "%s", "prompt": "hi", "%s": ' % (SERVED_NAME, field)
            + "[" * depth + "]" * depth + "}").encode()
    status, _, reply = raw(hserver, post_bytes(b"/v1/completions", body))
    assert status == 400, reply
    message = json.loads(reply)["error"]["message"]
    assert "nests" in message and len(message) < 300
    assert healthy(hserver)


def test_nul_after_json_is_a_400(hserver):
    body = json.dumps(GOOD).encode() + b"\x00garbage"
    status, _, reply = raw(hserver, post_bytes(b"/v1/completions", body))
    assert status == 400 and b"NUL" in reply


def test_chunked_body_over_the_limit_is_a_413(hserver):
    with connect(hserver) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Type: application/json\r\n\r\n")
        chunk = b"x" * 16384
        try:
            for _ in range(128):  # 2 MiB, eight times the limit
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all
        status, headers, _ = read_response(s.makefile("rb"))
    assert status == 413 and headers["connection"] == "close"
    assert healthy(hserver)


def test_chunked_body_within_the_limit_is_served(hserver):
    body = json.dumps(GOOD).encode()
    half = len(body) // 2
    status, _, reply = raw(hserver, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n"
                           + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                           % (half, body[:half], len(body) - half, body[half:]))
    assert status == 200, reply


def test_slow_headers_get_a_408_and_the_server_goes_on(hserver):
    start = time.monotonic()
    reply = b""
    with connect(hserver) as s:
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            if select.select([s], [], [], 0.25)[0]:  # the server answered: stop sending
                reply = s.recv(4096)
                break
            s.sendall(bytes([byte]))
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert time.monotonic() - start < 6
    assert healthy(hserver)


def test_slow_body_gets_a_408(hserver):
    with connect(hserver) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        status, _, _ = read_response(s.makefile("rb"))
    assert status == 408


def test_a_burst_of_300_connections_all_get_answers(hserver):
    socks = [socket.socket() for _ in range(300)]
    for s in socks:
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", hserver.port))
    statuses = []
    for s in socks:
        s.setblocking(True)
        s.settimeout(60)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for s in socks:
        with s:
            statuses.append(read_response(s.makefile("rb"))[0])
    assert statuses == [200] * 300


def test_pipelined_requests_each_get_a_response(hserver):
    one = post_bytes(b"/tokenize", json.dumps({"prompt": "hello"}).encode())
    with connect(hserver) as s:
        s.sendall(one + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + one)
        f = s.makefile("rb")
        replies = [read_response(f) for _ in range(3)]
    assert [r[0] for r in replies] == [200, 200, 200]
    assert json.loads(replies[0][2]) == json.loads(replies[2][2])


@pytest.mark.parametrize("method,path,allow", [("GET", "/v1/completions", "POST"),
                                               ("DELETE", "/v1/chat/completions", "POST"),
                                               ("POST", "/v1/models", "GET"),
                                               ("PUT", "/health", "GET")])
def test_wrong_method_is_a_405(hserver, method, path, allow):
    status, headers, reply = raw(hserver, f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: 0\r\n\r\n".encode())
    assert status == 405 and headers["allow"] == allow
    assert json.loads(reply)["error"]["message"]


def test_model_by_id(hserver):
    status, _, reply = raw(hserver, f"GET /v1/models/{SERVED_NAME} HTTP/1.1\r\nHost: x\r\n\r\n"
                           .encode())
    assert status == 200 and json.loads(reply)["id"] == SERVED_NAME
    status, _, reply = raw(hserver, b"GET /v1/models/gpt-9 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404 and json.loads(reply)["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("field,value", [("response_format", {"type": "yaml"}),
                                         ("min_tokens", 2),
                                         ("tools", [{"type": "function",
                                                     "function": {"name": "f"}}]),
                                         ("logit_bias", {"50256": -100}),
                                         ("suffix", "end"),
                                         ("best_of", 3)])
def test_unsupported_fields_are_named(hserver, field, value):
    status, body = hserver.post("/v1/completions", {**GOOD, field: value})
    assert status == 400 and body["error"]["param"] == field, body


def test_no_op_values_of_unsupported_fields_pass(hserver):
    status, _ = hserver.post("/v1/completions", {**GOOD, "response_format": {"type": "text"},
                                                 "tools": [], "best_of": 1})
    assert status == 200


def test_tiny_temperature_is_greedy(hserver):
    prompt = {**GOOD, "prompt": "The capital of France is", "max_tokens": 8}
    greedy = hserver.post("/v1/completions", prompt)[1]["choices"][0]["text"]
    for t in (1e-38, 1e-45, 1e-7):
        status, body = hserver.post("/v1/completions", {**prompt, "temperature": t})
        assert status == 200 and body["choices"][0]["text"] == greedy, t


def test_client_leaving_a_non_streaming_request_aborts_it(hserver):
    aborted = hserver.metric("shardlm:request_success_total", finished_reason="abort")
    body = json.dumps({**GOOD, "max_tokens": 1500, "ignore_eos": True}).encode()
    clients = []
    for _ in range(4):
        s = connect(hserver)
        s.sendall(post_bytes(b"/v1/completions", body))
        clients.append(s)
    deadline = time.monotonic() + 20
    while hserver.metric("shardlm:num_requests_running") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hserver.metric("shardlm:num_requests_running") == 4
    for s in clients:
        s.close()
    deadline = time.monotonic() + 10
    while hserver.metric("shardlm:num_requests_running") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hserver.metric("shardlm:num_requests_running") == 0
    assert hserver.metric("shardlm:kv_cache_usage_perc") == 0
    assert hserver.metric("shardlm:request_success_total",
                          finished_reason="abort") == aborted + 4


def test_keep_alive_connection_serves_many_requests(hserver):
    with connect(hserver) as s:
        f = s.makefile("rb")
        for _ in range(20):
            s.sendall(post_bytes(b"/v1/completions", json.dumps(GOOD).encode()))
            assert read_response(f)[0] == 200


def test_bearer_scheme_is_case_insensitive():
    s = Server(["--api-key", "sekret"])
    try:
        for scheme in ("Bearer", "bearer", "BEARER"):
            status, _ = s.post("/v1/completions", GOOD, {"Authorization": f"{scheme} sekret"})
            assert status == 200, scheme
        status, _ = s.post("/v1/completions", GOOD, {"Authorization": "Basic sekret"})
        assert status == 401
        # The key is checked before the body is read: a huge body with a wrong key is refused
        # at once, without the server reading it.
        reply = raw(s, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer no\r\n"
                    b"Content-Length: 1000000000\r\n\r\n")
        assert reply[0] == 401 and reply[1]["connection"] == "close"
    finally:
        assert s.stop() == 0


def test_slow_connections_beyond_the_limit_do_not_block_service():
    s = Server(["--max-connections", "8", "--http-header-timeout", "2"])
    stop = threading.Event()

    def slow_client():
        try:
            with connect(s) as c:
                while not stop.is_set():
                    c.sendall(b"X")  # a header byte now and then, never the end of the headers
                    time.sleep(0.5)
        except OSError:
            pass  # cut by the server's header deadline

    slow = [threading.Thread(target=slow_client) for _ in range(16)]
    try:
        for t in slow:
            t.start()
        time.sleep(0.5)
        start = time.monotonic()
        assert healthy(s)  # waits behind the slow ones at most until their deadlines pass
        assert time.monotonic() - start < 10
    finally:
        stop.set()
        for t in slow:
            t.join()
        assert s.stop() == 0
