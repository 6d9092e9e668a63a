"""Helpers of the Python package's tests: run a Python script that imports the package built in
build/python (the normal CMake build makes the module there), as its own process."""
import json
import os
import subprocess
import sys

import pytest

from conftest import BINARY

PYTHON_DIR = os.environ.get("SHARDLM_PYTHON_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(BINARY)), "python")


def python_env(**extra):
    if not any(f.startswith("_core") for f in os.listdir(os.path.join(PYTHON_DIR, "shardlm"))):
        pytest.fail(f"the module shardlm._core is not built in {PYTHON_DIR}/shardlm: configure "
                    "with nanobind in build/e2e-venv (scripts/build.sh does) and build _core")
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, SHARDLM_BINARY=os.path.abspath(BINARY),
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def start_script(code, *args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            env=env or python_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def run_script(code, *args, timeout=300, env=None):
    """(exit status, the JSON the script printed last on stdout or None, stderr)."""
    p = start_script(code, *args, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"the script ran past {timeout} s:\n{err[-4000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{") or line.startswith("[")]
    return p.returncode, (json.loads(lines[-1]) if lines else None), err
