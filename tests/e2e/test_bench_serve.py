"""`shardlm bench serve` against a real `shardlm serve` on the default model: a tiny run whose
report has every figure, plausible and stable in shape; request start times that follow the
requested rate; a chat run; a concurrency sweep with its plot; and a clear, quick error for a server
that is not there."""
import json
import socket
import subprocess
import time

from conftest import BINARY, SERVED_NAME

RUN_KEYS = {"setting", "duration_s", "completed", "failed", "total_input_tokens",
            "total_output_tokens", "request_throughput", "input_throughput", "output_throughput",
            "total_token_throughput", "peak_concurrency", "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms",
            "errors", "requests"}
REQUEST_KEYS = {"index", "ok", "error", "scheduled_s", "start_s", "ttft_ms", "e2e_ms",
                "prompt_tokens", "output_tokens", "expected_output_tokens", "itl_ms"}
SUMMARY_KEYS = {"count", "mean", "median", "p90", "p99", "max"}


def bench(base_url, tmp_path, *args, timeout=300):
    out = tmp_path / "result.json"
    cmd = [BINARY, "bench", "serve", "--base-url", base_url, "--no-progress",
           "--result-json", str(out), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(out.read_text()), p.stdout


def check_run(run, n, input_len, output_len):
    assert set(run) == RUN_KEYS
    assert run["completed"] == n and run["failed"] == 0 and run["errors"] == []
    assert run["total_output_tokens"] == n * output_len
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert set(run[key]) == SUMMARY_KEYS
        s = run[key]
        assert 0 < s["mean"] <= s["max"] and s["median"] <= s["p90"] <= s["p99"] <= s["max"], key
    for key in ("request_throughput", "input_throughput", "output_throughput",
                "total_token_throughput", "duration_s"):
        assert run[key] > 0, key
    assert run["ttft_ms"]["max"] <= run["e2e_ms"]["max"]
    assert len(run["requests"]) == n
    for r in run["requests"]:
        assert set(r) == REQUEST_KEYS
        assert r["ok"] and r["error"] == ""
        assert 0 < r["ttft_ms"] <= r["e2e_ms"]
        assert r["output_tokens"] == r["expected_output_tokens"] == output_len
        if input_len is not None:
            assert r["prompt_tokens"] == input_len
        # one chunk per token, except tokens that end no whole UTF-8 character
        assert 1 <= len(r["itl_ms"]) <= output_len - 1


def test_tiny_run_reports_every_figure(server, tmp_path):
    report, stdout = bench(server.base_url, tmp_path, "--input-len", 32, "--output-len", 8,
                           "--num-prompts", 8, "--request-rate", 20, "--seed", 1)
    assert report["schema"] == "shardlm.bench.v1" and report["benchmark"] == "serve"
    p = report["parameters"]
    assert p["model"] == SERVED_NAME and p["input_len"] == 32 and p["output_len"] == 8
    assert p["request_rate"] == 20 and p["num_prompts"] == 8
    assert len(report["runs"]) == 1
    run = report["runs"][0]
    check_run(run, 8, 32, 8)
    assert run["total_input_tokens"] == 8 * 32
    assert "Serving Benchmark Result" in stdout and "Median TTFT (ms):" in stdout


def test_request_starts_follow_the_rate(server, tmp_path):
    rate, n = 40, 40
    report, _ = bench(server.base_url, tmp_path, "--input-len", 4, "--output-len", 2,
                      "--num-prompts", n, "--request-rate", rate, "--seed", 3)
    requests = report["runs"][0]["requests"]
    assert all(r["ok"] for r in requests)
    for r in requests:  # no concurrency limit: each request goes out when it is due
        assert r["scheduled_s"] - 0.001 <= r["start_s"] <= r["scheduled_s"] + 0.1, r
    span = max(r["scheduled_s"] for r in requests)
    expected = (n - 1) / rate  # Poisson: sd of the span is sqrt(n - 1) / rate = 0.16 s
    assert 0.5 * expected < span < 1.5 * expected
    starts = sorted(r["start_s"] for r in requests)
    assert starts[-1] - starts[0] >= 0.5 * expected


def test_chat_endpoint(server, tmp_path):
    report, _ = bench(server.base_url, tmp_path, "--endpoint", "/v1/chat/completions",
                      "--input-len", 16, "--output-len", 4, "--num-prompts", 3)
    run = report["runs"][0]
    check_run(run, 3, None, 4)
    for r in run["requests"]:  # the chat template adds its own tokens around the message
        assert r["prompt_tokens"] > 16


def test_concurrency_sweep_and_plot(server, tmp_path):
    plot = tmp_path / "sweep.svg"
    report, stdout = bench(server.base_url, tmp_path, "--input-len", 16, "--output-len", 4,
                           "--num-prompts", 4, "--sweep-concurrency", "1,2", "--plot", plot)
    assert [r["setting"]["max_concurrency"] for r in report["runs"]] == [1, 2]
    for run in report["runs"]:
        check_run(run, 4, 16, 4)
        assert run["peak_concurrency"] <= run["setting"]["max_concurrency"]
    svg = plot.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert "c=2" in svg
    assert "| max_concurrency=1, request_rate=inf |" in stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stopped_server_is_a_clear_error(tmp_path):
    start = time.monotonic()
    p = subprocess.run([BINARY, "bench", "serve", "--base-url", f"http://127.0.0.1:{free_port()}",
                        "--num-prompts", "2", "--timeout", "10"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "cannot reach the server" in p.stderr and "shardlm serve" in p.stderr, p.stderr
    assert time.monotonic() - start < 10
