#!/usr/bin/env python3
"""Fails when a source file includes a header from a layer above its own (a ctest, `layers`).

The layers, lowest first (docs/architecture.md, "Layers"); a module may include its own headers
and those of lower layers, never a sibling's or a higher one's:

    core < formats < tokenizer, template < comm < backend < kv < model < engine < parallel
         < server, serve_bench < fleet < app

fleet (etcd registration, NATS events, the frontend router) sits above server because the frontend
serves the same OpenAI API with server's HTTP transport and error bodies.

KNOWN lists the upward includes still in the tree, each with the work that removes it; the check
also fails when one of them is gone, so that the list only shrinks.
"""
import pathlib
import re
import sys

LAYERS = [["core"], ["formats"], ["tokenizer", "template"], ["comm"], ["backend"], ["kv"],
          ["model"], ["engine"], ["parallel"], ["server", "serve_bench"], ["fleet"],
          ["app"]]
RANK = {m: i for i, group in enumerate(LAYERS) for m in group}

# (file, included header): why it is still there.
KNOWN = {}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([^"]+)"', re.M)


def main(root):
    src = root / "src"
    problems, seen = [], set()
    modules = {p.name for p in src.iterdir() if p.is_dir()}
    for m in sorted(modules - RANK.keys()):
        problems.append(f"src/{m}/ is in no layer: add it to LAYERS in {__file__}")
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cpp", ".cu", ".cuh"):
            continue
        rel = path.relative_to(root).as_posix()
        mine = path.relative_to(src).parts[0]
        if mine not in RANK:
            continue
        text = path.read_text(errors="replace")
        for match in INCLUDE.finditer(text):
            theirs, header = match.group(1), f"{match.group(1)}/{match.group(2)}"
            if theirs not in RANK or theirs == mine or RANK[theirs] < RANK[mine]:
                continue
            if (rel, header) in KNOWN:
                seen.add((rel, header))
                continue
            line = text.count("\n", 0, match.start()) + 1
            how = "a sibling layer" if RANK[theirs] == RANK[mine] else "a higher layer"
            problems.append(f"{rel}:{line}: {mine}/ includes {header}, {how}; move what it needs "
                            f"down, or pass it in from above")
    for stale in sorted(KNOWN.keys() - seen):
        problems.append(f"{stale[0]} no longer includes {stale[1]}: remove it from KNOWN")
    for p in problems:
        print(p)
    print(f"layers: {'FAILED' if problems else 'ok'} ({len(KNOWN)} known upward includes left)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(__file__).resolve().parent.parent))
