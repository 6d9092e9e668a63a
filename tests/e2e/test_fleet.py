"""A serving fleet (issue 20) with real etcd and nats-server processes on free ports: workers are
separate `shardlm serve` processes on a tiny model that register in etcd and publish KV events on
NATS; `shardlm frontend` routes to them. Requests spread; a killed worker's streams end cleanly and
new requests go to the other; a restarted worker rejoins; 64 concurrent streams through the
official openai client; kv routing beats round-robin on prefix-cache hits; etcd or NATS down ->
degraded but serving; hostile registrations are ignored; bad requests get clear errors; doctor."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BINARY, SERVED_NAME, STARTED, Server, kill_tree
from test_tensor_parallel import free_port

TOOL = os.environ.get("SHARDLM_TINY_MODEL_TOOL", "build/tests/shardlm_tiny_model")
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
TTL = 2  # seconds: the workers' lease

pytestmark = pytest.mark.skipif(not (os.path.exists(ETCD) and os.path.exists(NATS)),
                                reason="etcd-server and nats-server are not installed "
                                       "(scripts/install_deps.sh)")


def wait_for(cond, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Etcd:
    def __init__(self, tmp):
        self.port, peer = free_port(), free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [ETCD, "--data-dir", str(tmp / f"etcd-{self.port}"), "--listen-client-urls",
             f"http://{self.endpoint}", "--advertise-client-urls", f"http://{self.endpoint}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
             f"http://127.0.0.1:{peer}", "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        wait_for(self.ready, what="etcd")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/version", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def put(self, key, value):
        import base64
        body = {"key": base64.b64encode(key.encode()).decode(),
                "value": base64.b64encode(value.encode()).decode()}
        req = urllib.request.Request(f"http://{self.endpoint}/v3/kv/put",
                                     data=json.dumps(body).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


class Nats:
    def __init__(self):
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([NATS, "-a", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        wait_for(self.ready, what="nats-server")

    def ready(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


def worker(model, etcd, nats, *extra):
    w = Server(model=model, extra_args=["--etcd-endpoints", etcd.endpoint, "--nats-server",
                                        nats.url, "--lease-ttl", str(TTL), *extra])
    STARTED.append(w.proc)
    return w


class Frontend(Server):
    """`shardlm frontend`, started with Dynamo's spelling of the port flag (--http-port)."""

    def __init__(self, etcd, nats, mode="round-robin", extra=()):
        self.log_path = f"/tmp/shardlm-e2e-frontend-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [BINARY, "frontend", "--http-port", "0", "--router-mode", mode, "--etcd-endpoints",
             etcd.endpoint, "--poll-interval", "0.2", *(["--nats-server", nats.url] if nats else []),
             *extra], stdout=self.log, stderr=subprocess.STDOUT)
        STARTED.append(self.proc)
        m = wait_for(lambda: re.search(r"on http://127\.0\.0\.1:(\d+) ", self.text()),
                     what="the frontend")
        self.port = int(m.group(1))
        self.base_url = self.metrics_url = f"http://127.0.0.1:{self.port}"

    def health(self):
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def wait_workers(self, n, timeout=20):
        wait_for(lambda: self.health()[1].get("workers") == n, timeout, f"{n} workers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fleet") / "tiny.gguf")
    subprocess.run([TOOL, path, "--layers", "2"], check=True)
    return path


@pytest.fixture
def services(tmp_path):
    etcd, nats = Etcd(tmp_path), Nats()
    yield etcd, nats
    etcd.stop()
    nats.stop()


def complete(server, prompt, max_tokens=8, **extra):
    body = {"model": SERVED_NAME, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True, **extra}
    status, out = server.post("/v1/completions", body)
    assert status == 200, out
    return out["choices"][0]["text"]


def served_by(frontend):
    """Requests relayed per worker id, from the frontend's /metrics."""
    out = {}
    for key, value in frontend.metrics().items():
        m = re.match(r'shardlm:frontend_requests_total\{.*worker="([^"]+)"', key)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + value
    return out


def stream_events(base_url, prompt, max_tokens):
    """The SSE data lines of one streamed completion (raw, so a cut stream shows as it is)."""
    body = json.dumps({"model": SERVED_NAME, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0, "ignore_eos": True, "stream": True}).encode()
    req = urllib.request.Request(base_url + "/v1/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    events = []
    with urllib.request.urlopen(req, timeout=60) as r:
        for line in r:
            line = line.decode().strip()
            if line.startswith("data: "):
                events.append(line[6:])
    return events


def test_requests_spread_models_listed_output_equal(tiny, services):
    etcd, nats = services
    a, b = worker(tiny, etcd, nats), worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats)
    fe.wait_workers(2)
    status, body = fe.get("/v1/models")
    assert [m["id"] for m in json.loads(body)["data"]] == [SERVED_NAME]
    prompts = [f"hello {i} world" for i in range(8)]
    direct = [complete(a, p) for p in prompts]
    assert [complete(fe, p) for p in prompts] == direct
    counts = served_by(fe)
    assert len(counts) == 2 and all(v >= 3 for v in counts.values()), counts
    assert b.metric("shardlm:request_success_total") >= 3
    assert fe.metric("shardlm:frontend_routing_decisions_total", mode="round-robin") == 8
    # bad input: a clear 400/404 from the frontend or the worker; the fleet keeps serving
    status, err = fe.post("/v1/completions", b"{not json")
    assert status == 400 and "not valid JSON" in err["error"]["message"]
    status, err = fe.post("/v1/completions", {"model": "nope", "prompt": "x"})
    assert status == 404 and SERVED_NAME in err["error"]["message"]
    status, err = fe.post("/v1/completions", {"model": SERVED_NAME, "prompt": "x",
                                              "max_tokens": -3})
    assert status == 400 and "max_tokens" in err["error"]["message"]
    assert complete(fe, prompts[0]) == direct[0]
    for s in (fe, a, b):
        assert s.stop() == 0, s.text()


def test_64_concurrent_streams_openai_client(tiny, services):
    import openai
    etcd, nats = services
    workers = [worker(tiny, etcd, nats), worker(tiny, etcd, nats)]
    fe = Frontend(etcd, nats, mode="kv", extra=["--model", tiny])
    fe.wait_workers(2)
    client = openai.OpenAI(base_url=fe.base_url + "/v1", api_key="unused", max_retries=0,
                           timeout=120)
    prompts = [f"stream number {i} of many" for i in range(64)]

    def run(p):
        chunks = client.completions.create(model=SERVED_NAME, prompt=p, max_tokens=12,
                                           temperature=0, stream=True,
                                           extra_body={"ignore_eos": True})
        return "".join(c.choices[0].text for c in chunks if c.choices)

    expected = [complete(workers[0], p, 12) for p in prompts]
    with ThreadPoolExecutor(max_workers=64) as pool:
        got = list(pool.map(run, prompts))
    assert got == expected
    assert sum(served_by(fe).values()) == 64
    assert fe.metric("shardlm:frontend_errors_total") == 0
    for s in (fe, *workers):
        assert s.stop() == 0, s.text()


def test_killed_worker_streams_end_cleanly_new_requests_rerouted_restart_rejoins(tiny, services):
    etcd, nats = services
    # One 400-token stream of the tiny model takes ~20 ms on an idle machine, less than one poll of
    # a's metrics: 48 streams of 480 tokens (of the model's 512) keep each worker's batch of 24
    # running long enough to be caught mid-stream.
    a, b = worker(tiny, etcd, nats), worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats)
    fe.wait_workers(2)
    results = [None] * 48

    def one(i):
        results[i] = stream_events(fe.base_url, f"long story {i}", 480)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    wait_for(lambda: a.metric("shardlm:num_requests_running") > 0, what="a stream on worker a")
    kill_tree(a.proc)
    killed_at = time.monotonic()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a stream hung after its worker died"
    for events in results:
        assert events[-1] == "[DONE]", events[-3:]
    cut = [e for e in results if any('"error"' in x for x in e)]
    assert cut, "no stream was on the killed worker"
    for events in cut:
        assert "retry" in json.loads(events[-2])["error"]["message"]
    # new requests go to the other worker at once (refused connections are routed around)
    for i in range(4):
        assert complete(fe, f"after {i}")
    fe.wait_workers(1, timeout=TTL + 5)
    assert time.monotonic() - killed_at < TTL + 5
    # restart: it rejoins by itself and gets requests again
    a2 = worker(tiny, etcd, nats)
    fe.wait_workers(2)
    before = served_by(fe)
    for i in range(6):
        complete(fe, f"rejoined {i}")
    after = served_by(fe)
    assert sum(1 for k in after if after[k] > before.get(k, 0)) == 2, (before, after)
    for s in (fe, b, a2):
        assert s.stop() == 0, s.text()


def test_unhealthy_worker_is_left_out_for_a_moment(tiny, services):
    """A worker that is the master of a PP 2 group whose other rank died stays registered and
    answers 503 (re-forming); requests go to the other worker, and the frontend leaves the
    unhealthy one out for a second instead of trying it first for every request."""
    etcd, nats = services
    port = free_port()
    rank1 = subprocess.Popen([BINARY, "serve", "--model", tiny, "--port", "0", "--threads", "1",
                              "--pp", "2", "--nnodes", "2", "--node-rank", "1",
                              "--dist-init-addr", f"127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    STARTED.append(rank1)
    a = worker(tiny, etcd, nats, "--pp", "2", "--nnodes", "2", "--node-rank", "0",
               "--dist-init-addr", f"127.0.0.1:{port}")
    b = worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats)
    fe.wait_workers(2)
    assert complete(a, "the group serves")
    rank1.kill()
    rank1.wait()
    def unhealthy():
        try:
            a.get("/health")
            return False
        except urllib.error.HTTPError as e:
            return e.code == 503

    wait_for(unhealthy, what="worker a unhealthy")
    began = time.monotonic()
    for i in range(20):
        assert complete(fe, f"while a re-forms {i}")
    tries = fe.text().count("answered 503 (draining or unhealthy)")
    seconds = time.monotonic() - began
    assert 1 <= tries <= seconds + 2, (tries, seconds, fe.text()[-2000:])
    for s in (fe, b):
        assert s.stop() == 0, s.text()
    kill_tree(a.proc)


def bench_prefix(fe, tiny, tmp_path, name):
    out = tmp_path / f"{name}.json"
    subprocess.run([BINARY, "bench", "serve", "--base-url", fe.base_url, "--model", SERVED_NAME,
                    "--tokenizer", tiny, "--dataset", "prefix", "--num-prefixes", "5",
                    "--prefix-len", "192", "--input-len", "16", "--output-len", "4",
                    "--num-prompts", "20", "--max-concurrency", "1", "--no-progress",
                    "--result-json", str(out)], check=True, capture_output=True, timeout=300)
    return json.loads(out.read_text())


def hit_rate(workers):
    hits = sum(w.metric("shardlm:prefix_cache_hits_total") for w in workers)
    queries = sum(w.metric("shardlm:prefix_cache_queries_total") for w in workers)
    return hits / queries


def test_kv_routing_beats_round_robin_on_prefix_hits(tiny, services, tmp_path):
    etcd, nats = services
    rates = {}
    for mode in ("round-robin", "kv"):
        workers = [worker(tiny, etcd, nats), worker(tiny, etcd, nats)]
        fe = Frontend(etcd, nats, mode=mode, extra=["--model", tiny])
        fe.wait_workers(2)
        result = bench_prefix(fe, tiny, tmp_path, mode)
        rates[mode] = hit_rate(workers)
        print(f"{mode}: prefix-cache hit rate {rates[mode]:.3f}, "
              f"mean TTFT {result['runs'][0]['ttft_ms']['mean']:.2f} ms")
        if mode == "kv":
            assert fe.metric("shardlm:frontend_kv_hit_blocks_total") > 0
        for s in (fe, *workers):
            assert s.stop() == 0, s.text()
        wait_for(lambda: not any(w.proc.poll() is None for w in workers), what="workers to stop")
    # 20 prompts over 5 prefixes of 12 blocks (of 13): round-robin computes each prefix on both
    # workers (hit rate 10/20 * 12/13 = 0.46), kv on one (15/20 * 12/13 = 0.69)
    assert rates["kv"] > rates["round-robin"] + 0.1, rates


def test_kv_routing_of_chat_requests_follows_the_rendered_prefix(tiny, services):
    """The frontend renders the chat template and tokenises as serve does: chats that share a long
    system message go to the worker holding it, and hit its prefix cache there."""
    etcd, nats = services
    workers = [worker(tiny, etcd, nats), worker(tiny, etcd, nats)]
    fe = Frontend(etcd, nats, mode="kv", extra=["--model", tiny])
    fe.wait_workers(2)
    system = "You are a careful assistant who answers briefly. " * 8
    for i in range(4):
        status, body = fe.post("/v1/chat/completions", {
            "model": SERVED_NAME, "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": f"question {i}"}]})
        assert status == 200, body
    assert sorted(served_by(fe).values()) == [4], served_by(fe)
    assert fe.metric("shardlm:frontend_kv_hit_blocks_total") >= 3 * 8
    assert sum(w.metric("shardlm:prefix_cache_hits_total") for w in workers) >= 3 * 8 * 16
    for s in (fe, *workers):
        assert s.stop() == 0, s.text()


def test_etcd_or_nats_down_degraded_but_serving_hostile_registrations_ignored(tiny, services):
    etcd, nats = services
    etcd.put("shardlm/workers/x/bad-json", "{this is not json")
    etcd.put("shardlm/workers/x/bad-url", json.dumps(
        {"version": 1, "id": "evil", "model": SERVED_NAME, "url": "file:///etc/passwd",
         "block_size": 16}))
    etcd.put("shardlm/workers/other/unknown", json.dumps(
        {"version": 1, "id": "other", "model": "other-model", "url": "http://127.0.0.1:1",
         "block_size": 16}))
    w = worker(tiny, etcd, nats)
    fe = Frontend(etcd, nats, extra=["--served-model-name", SERVED_NAME])
    fe.wait_workers(1)
    assert [m["id"] for m in json.loads(fe.get("/v1/models")[1])["data"]] == [SERVED_NAME]
    text = fe.text()
    assert "ignoring registration shardlm/workers/x/bad-json: not a JSON object" in text
    assert "bad-url: url 'file:///etc/passwd' is not http://host:port" in text
    assert "model 'other-model' is not one this frontend serves" in text
    assert complete(fe, "before")
    assert fe.health() == (200, {"status": "ok", "etcd": True, "nats": True, "workers": 1,
                                 "router_mode": "round-robin"})
    etcd.stop()
    wait_for(lambda: fe.health()[1]["status"] == "degraded", what="degraded")
    assert fe.metric("shardlm:frontend_degraded") == 1
    assert fe.metric("shardlm:frontend_etcd_up") == 0
    assert complete(fe, "with etcd down")  # the last view still serves
    nats.stop()
    wait_for(lambda: fe.health()[1]["nats"] is False, what="NATS down in /health")
    assert complete(fe, "with both down")
    doctor = subprocess.run([BINARY, "doctor", "--etcd-endpoints", etcd.endpoint, "--nats-server",
                             nats.url], capture_output=True, text=True, timeout=60)
    assert doctor.returncode == 1 and "UNREACHABLE" in doctor.stdout, doctor.stdout
    for s in (fe, w):
        assert s.stop() == 0, s.text()


def test_doctor_checks_services_and_lists_workers(tiny, services):
    etcd, nats = services
    w = worker(tiny, etcd, nats)
    etcd.put("shardlm/workers/x/bad", "[]")
    doctor = wait_for(lambda: (lambda d: d if "127.0.0.1:" + str(w.port) in d.stdout else None)(
        subprocess.run([BINARY, "doctor", "--etcd-endpoints", etcd.endpoint, "--nats-server",
                        nats.url], capture_output=True, text=True, timeout=60)), what="doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "connected" in doctor.stdout and "version 3." in doctor.stdout
    assert f"model '{SERVED_NAME}'" in doctor.stdout and "healthy" in doctor.stdout
    assert "IGNORED by frontends: not a JSON object" in doctor.stdout
    assert w.stop() == 0, w.text()
