"""The master's rendezvous port (--dist-init-addr) under hostile input: the cluster token is
checked before any body is read, values are bounded, a malformed header is a 400 (never an
exception's text), and a burst of connections (many ranks at once) is answered, not reset."""
import socket
import subprocess
import time

from conftest import BINARY, MODEL
from test_http_hostile import read_response
from test_tensor_parallel import free_port


def start_master(port, *extra):
    proc = subprocess.Popen([BINARY, "serve", "--model", MODEL, "--port", "0", "--threads", "1",
                             "--pp", "2", "--nnodes", "2", "--node-rank", "0",
                             "--dist-init-addr", f"127.0.0.1:{port}", "--dist-timeout", "60",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the store listens before the master waits for ranks
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the master's rendezvous did not come up:\n" + proc.communicate()[0])


def ask(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        return read_response(s.makefile("rb"))


def test_rendezvous_refuses_before_reading_and_survives_a_burst():
    port = free_port()
    master = start_master(port, "--cluster-token", "s3cret")
    try:
        start = time.monotonic()
        status, _, body = ask(port, b"POST /set HTTP/1.1\r\nHost: x\r\nX-Shardlm-Key: k\r\n"
                                    b"X-Shardlm-Token: wrong\r\nContent-Length: 1000000000\r\n\r\n")
        assert status == 403 and b"cluster-token" in body
        assert time.monotonic() - start < 5  # refused at the headers, not after a gigabyte
        status, _, body = ask(port, b"GET /get HTTP/1.1\r\nHost: x\r\nX-Shardlm-Key: k\r\n"
                                    b"X-Shardlm-Token: s3cret\r\nX-Shardlm-Timeout-Ms: 1e9x\r\n\r\n")
        assert status == 400 and b"stoll" not in body and b"EXCEPTION" not in body
        status, _, _ = ask(port, b"POST /set HTTP/1.1\r\nHost: x\r\nX-Shardlm-Key: k\r\n"
                                 b"X-Shardlm-Token: s3cret\r\nContent-Length: 2000000\r\n\r\n")
        assert status == 413
        socks = [socket.socket() for _ in range(200)]
        for s in socks:
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
        for s in socks:
            s.setblocking(True)
            s.settimeout(30)
            s.sendall(b"GET /get HTTP/1.1\r\nHost: x\r\nX-Shardlm-Key: none\r\n"
                      b"X-Shardlm-Token: s3cret\r\nConnection: close\r\n\r\n")
        statuses = []
        for s in socks:
            with s:
                statuses.append(read_response(s.makefile("rb"))[0])
        assert statuses == [404] * 200  # a missing key, answered on every connection
    finally:
        master.kill()
        master.communicate(timeout=30)
