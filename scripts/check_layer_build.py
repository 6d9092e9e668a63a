#!/usr/bin/env python3
"""Shows that the build holds the layers (a ctest, `layers_build`): with each module's own
compile command (build/compile_commands.json), a header of the module above it must not be found,
and a header of its own and of the module below must be. See cmake/modules.cmake.

usage: check_layer_build.py <build dir>
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from check_layers import LAYERS, RANK  # noqa: E402  (the order the include test states)


def any_header(module):
    headers = sorted((ROOT / "src" / module).glob("*.h"))
    return f"{module}/{headers[0].name}" if headers else None


def command_for(entries, module):
    """One of the module's compile commands, reduced to a syntax check of stdin's file."""
    for e in entries:
        if f"/src/{module}/" in e["file"] and e["file"].endswith(".cpp") and "/cuda/" not in e["file"]:
            cmd = e["command"]
            cmd = re.sub(r" -o \S+| -c \S+| -MF \S+| -MT \S+| -MD", " ", cmd)
            return cmd + " -fsyntax-only", e["directory"]
    return None, None


def compiles(cmd, cwd, header):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write(f'#include "{header}"\n')
    r = subprocess.run(f"{cmd} {f.name}", shell=True, cwd=cwd, capture_output=True, text=True)
    pathlib.Path(f.name).unlink()
    return r.returncode == 0, r.stderr


def main(build):
    entries = json.loads((pathlib.Path(build) / "compile_commands.json").read_text())
    problems, checked = [], 0
    for module in sorted(RANK, key=RANK.get):
        cmd, cwd = command_for(entries, module)
        if not cmd:
            continue
        own = any_header(module)
        ok, err = compiles(cmd, cwd, own)
        if not ok:
            problems.append(f"{module}: its own header {own} does not compile: {err[:300]}")
        higher = [any_header(m) for m in RANK if RANK[m] > RANK[module] and any_header(m)]
        if higher:
            ok, _ = compiles(cmd, cwd, higher[0])
            if ok:
                problems.append(f"{module}: {higher[0]} (a higher layer) compiles: the build does "
                                f"not hold the layer order; see cmake/modules.cmake")
        checked += 1
    for p in problems:
        print(p)
    print(f"layers_build: {'FAILED' if problems else 'ok'} ({checked} modules checked)")
    return 1 if problems or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build"))
