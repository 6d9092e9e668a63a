"""Disaggregated prefill/decode across two hosts (two network namespaces joined by a veth pair, as
test_fleet_two_hosts): the head runs etcd, NATS, a prefill worker (--is-prefill-worker) and the
frontend; the other host runs a decode worker on 0.0.0.0 whose KV transfer port
(--kv-transfer-port 8101) is registered under its own address. The prefill worker's KV blocks
cross the link; a client on the other host gets the greedy text of a single aggregated worker."""
import json
import subprocess

from conftest import BINARY, SERVED_NAME
from test_fleet_two_hosts import (HEAD, NS, complete, head_services, http, start,  # noqa: F401
                                  two_hosts, wait_for)


def test_disaggregated_fleet_over_two_hosts(two_hosts, tmp_path):  # noqa: F811
    model, log = head_services(tmp_path)
    serve = [BINARY, "serve", "--model", model, "--threads", "1", "--served-model-name",
             SERVED_NAME, "--log-interval", "0", "--block-size", "4"]
    fleet = ["--etcd-endpoints", f"{HEAD}:2379", "--nats-server", f"nats://{HEAD}:4222"]
    start(NS[0], [*serve, "--host", HEAD, "--port", "8002"], log)  # the reference, outside
    start(NS[0], [*serve, *fleet, "--host", HEAD, "--port", "8001", "--is-prefill-worker"], log)
    start(NS[1], [*serve, *fleet, "--host", "0.0.0.0", "--port", "8001", "--disaggregation-mode",
                  "decode", "--kv-transfer-port", "8101"], log)
    start(NS[0], [BINARY, "frontend", "--host", HEAD, "--port", "8000", *fleet], log)
    base = f"http://{HEAD}:8000"

    def workers():
        status, text = http(NS[0], base + "/health")
        return json.loads(text).get("workers") if status in (200, 503) else None

    wait_for(lambda: workers() == 2, what="the prefill and decode workers registered")
    wait_for(lambda: http(NS[0], f"http://{HEAD}:8002/health")[0] == 200, what="the reference")
    prompts = [f"a prompt from the other host, number {i}, long enough for blocks" for i in
               range(6)]
    expected = [complete(NS[0], f"http://{HEAD}:8002", p) for p in prompts]
    assert [complete(NS[1], base, p) for p in prompts] == expected
    status, text = http(NS[1], "http://127.0.0.1:8001/kv/stats")
    stats = json.loads(text)
    assert status == 200 and stats["role"] == "decode", text
    # The decode worker counts the frames it took: one or more per request, as the prefill
    # worker sends a prompt's blocks while it computes them (more parts on a busy machine).
    status, text = http(NS[0], f"http://{HEAD}:8001/kv/stats")
    sent = json.loads(text)
    assert status == 200 and sent["role"] == "prefill" and sent["transfers"] == 6, text
    assert stats["transfers"] == sent["parts"] and stats["blocks"] >= 6, (stats, sent)
    assert stats["refused"] == 0 and sent["failed"] == 0, (stats, sent)
    doctor = subprocess.run(["ip", "netns", "exec", NS[1], BINARY, "doctor", "--etcd-endpoints",
                             f"{HEAD}:2379", "--nats-server", f"nats://{HEAD}:4222"],
                            capture_output=True, text=True, timeout=60)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "prefill" in doctor.stdout and "decode" in doctor.stdout, doctor.stdout
