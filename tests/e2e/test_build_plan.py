"""README command 1 builds only what it runs: `scripts/build.sh shardlm` (what quickstart.sh
calls) compiles the library and the binary, no tests, benchmarks or tools, and CUDA kernels only
when the CUDA backend is on (quickstart turns it on only where a GPU is visible). Checked on the
build plan (`ninja -t commands`) of a fresh build directory, without compiling anything."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def plan(tmp_path, cuda, *targets):
    env = dict(os.environ, SHARDLM_BUILD_DIR=str(tmp_path / "build"), SHARDLM_CUDA=cuda)
    out = subprocess.run([str(REPO / "scripts" / "build.sh"), "-t", "commands", *targets],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if "/usr/" in line]  # compile and link lines


def test_command_one_builds_only_the_binary(tmp_path):
    commands = plan(tmp_path, "OFF", "shardlm")
    assert any(" -o shardlm " in c for c in commands), commands[-3:]
    assert not [c for c in commands if "/tests/" in c or "/bench/" in c or "nvcc" in c]
    everything = plan(tmp_path, "OFF")
    assert [c for c in everything if "/tests/" in c] and [c for c in everything if "/bench/" in c]


def test_cuda_kernels_only_when_asked(tmp_path):
    if not pathlib.Path("/usr/local/cuda/bin/nvcc").exists():
        pytest.skip("no CUDA toolkit here: SHARDLM_CUDA=ON cannot be configured")
    assert [c for c in plan(tmp_path, "ON", "shardlm") if "nvcc" in c]
    assert not [c for c in plan(tmp_path, "OFF", "shardlm") if "nvcc" in c]
