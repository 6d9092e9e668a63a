"""`pip wheel .` builds the package (CUDA off, the library without tests or benchmarks: about 10
minutes on 2 cores the first time, incremental after, in build-wheel/), and the wheel installed
into a fresh venv works from outside the repository: the `shardlm` command runs the CLI and
LLM.generate gives the same greedy text as the build's `shardlm generate`. ctest label `wheel`."""
import json
import os
import subprocess
import sys

from conftest import BINARY, MODEL
from test_python_api import PROMPTS, cli_greedy

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

SCRIPT = r"""
import json, sys, shardlm
from shardlm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], threads=2, device="cpu")
out = [o.outputs[0].text for o in llm.generate(json.loads(sys.argv[2]), SamplingParams(
    temperature=0, max_tokens=24, ignore_eos=True), use_tqdm=False)]
print(json.dumps({"text": out, "file": shardlm.__file__}))
"""


def test_wheel_builds_installs_and_generates(tmp_path):
    dist = tmp_path / "dist"
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", REPO, "--no-build-isolation",
                            "--no-deps", "-w", str(dist),
                            "--config-settings=cmake.define.SHARDLM_CUDA=OFF"],
                           env=env, capture_output=True, text=True, timeout=2400)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheels = list(dist.glob("shardlm-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", str(wheels[0])], check=True, timeout=300)
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "SHARDLM_BINARY", "VIRTUAL_ENV")}
    version = subprocess.run([str(venv / "bin" / "shardlm"), "--version"], env=clean,
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("shardlm"), version.stderr
    run = subprocess.run([str(venv / "bin" / "python"), "-c", SCRIPT, MODEL, json.dumps(PROMPTS)],
                         env=clean, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["file"].startswith(str(venv))
    assert result["text"] == cli_greedy(PROMPTS)
