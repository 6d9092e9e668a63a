#!/usr/bin/env python3
"""Memory of an FP8 checkpoint with block-wise scales (DeepSeek-V3's format: F8_E4M3 weights, an
F32 weight_scale_inv per 128 x 128 block) served on the CPU alone and by PP=2 and TP=2 groups on
one machine: each process's private memory (RssAnon, where its prepared copies live: FP8 with a
scale per 128 columns by default, BF16 with SHARDLM_CPU_FP8_GROUPS=0) and its mapped file
pages (RssFile, shared through the page cache) once the server answers, against the whole model's
BF16 size. Each rank prepares only the matrices it holds, so a rank of a group should hold about
half the bytes of one process.

The checkpoint is a llama-shaped model written here (random codes, constant scales; the
vocabulary and tokenizer of the tiny test model), about 1 GB of FP8 by default.
Usage:
  build/e2e-venv/bin/python bench/fp8_checkpoint_memory.py --binary build/shardlm \
      --tool build/tests/shardlm_tiny_model [--layers 16 --hidden 2048 --ffn 8192]
      [--write-only DIR: only write the checkpoint to DIR, for bench offline]
"""
import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

from array import array
import random

BLOCK = 128


def write_checkpoint(path, tool, layers, hidden, ffn):
    """The tiny model's tokenizer and config, scaled up, with F8_E4M3 block-scaled matrices."""
    subprocess.run([tool, path, "--hf", "--untied", "--layers", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    config = json.load(open(os.path.join(path, "config.json")))
    heads, kv_heads = hidden // 64, max(1, hidden // 256)
    config.update({"hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
                   "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                   "head_dim": 64, "quantization_config": {
                       "quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                       "weight_block_size": [BLOCK, BLOCK]}})
    json.dump(config, open(os.path.join(path, "config.json"), "w"))
    vocab = config["vocab_size"]
    rnd = random.Random(0)
    no_nan = bytes.maketrans(b"\x7f\xff", b"\x7e\xfe")  # 0x7f and 0xff are E4M3's NaNs
    tensors = {}

    def f32(values):
        return array("f", values).tobytes()

    def bf16(name, shape):
        n = shape[0] * shape[1]
        small = [(struct.unpack("<I", struct.pack("<f", rnd.gauss(0, 0.02)))[0] >> 16)
                 for _ in range(4096)]
        tensors[name] = ("BF16", array("H", (small[i % 4096] for i in range(n))).tobytes(), shape)

    def fp8(name, rows, cols):
        tensors[name] = ("F8_E4M3", os.urandom(rows * cols).translate(no_nan), [rows, cols])
        grid = [-(-rows // BLOCK), -(-cols // BLOCK)]
        tensors[name + "_scale_inv"] = ("F32", f32([1e-3] * (grid[0] * grid[1])), grid)

    bf16("model.embed_tokens.weight", [vocab, hidden])
    bf16("lm_head.weight", [vocab, hidden])
    tensors["model.norm.weight"] = ("F32", f32([1.0] * hidden), [hidden])
    kv = kv_heads * 64
    for i in range(layers):
        p = f"model.layers.{i}."
        for n in ("input_layernorm", "post_attention_layernorm"):
            tensors[p + n + ".weight"] = ("F32", f32([1.0] * hidden), [hidden])
        shapes = (("self_attn.q_proj", hidden, hidden), ("self_attn.k_proj", kv, hidden),
                  ("self_attn.v_proj", kv, hidden), ("self_attn.o_proj", hidden, hidden),
                  ("mlp.gate_proj", ffn, hidden), ("mlp.up_proj", ffn, hidden),
                  ("mlp.down_proj", hidden, ffn))
        for n, rows, cols in shapes:
            fp8(p + n + ".weight", rows, cols)
    header, offset = {}, 0
    for name, (dtype, data, shape) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(path, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, data, _ in tensors.values():
            f.write(data)
    fp8_elems = sum(len(d) for t, d, _ in tensors.values() if t == "F8_E4M3")
    return fp8_elems


def descendants(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    kids = [int(p) for p in out.stdout.split()]
    return kids + [g for k in kids for g in descendants(k)]


def rss(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("RssAnon", "RssFile"):
            fields[k] = int(v.split()[0]) / 1024  # MiB
    return fields


def measure(binary, model, flags):
    proc = subprocess.Popen([binary, "serve", "--model", model, "--port", "0", "--threads", "1",
                             "--max-num-seqs", "4", *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = ""
    try:
        while not (m := re.search(r"on http://127\.0\.0\.1:(\d+) ", log)):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(log)
            log += line
        body = json.dumps({"prompt": "hello", "max_tokens": 2, "temperature": 0}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{m.group(1)}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=600).read()
        pids = [proc.pid] + descendants(proc.pid)
        ranks = [p for p in pids if rss(p).get("RssAnon", 0) > 64] or [proc.pid]
        kept = re.findall(r"matrices of this rank's weights: (\d+) kept in FP8 as published "
                          r"\([\d.]+ GiB\), (\d+) dequantised", log)
        return [rss(p) for p in ranks], [f"{k} FP8, {d} BF16" for k, d in kept]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/shardlm")
    ap.add_argument("--tool", default="build/tests/shardlm_tiny_model")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--ffn", type=int, default=8192)
    ap.add_argument("--write-only", metavar="DIR",
                    help="write the checkpoint to DIR and stop (for `shardlm bench offline -m DIR`)")
    a = ap.parse_args()
    if a.write_only:
        n = write_checkpoint(a.write_only, a.tool, a.layers, a.hidden, a.ffn)
        print(f"{a.write_only}: {n / 2**30:.2f} GiB of FP8 codes")
        return
    work = tempfile.mkdtemp(prefix="fp8mem-")
    try:
        model = os.path.join(work, "m")
        n = write_checkpoint(model, a.tool, a.layers, a.hidden, a.ffn)
        print(f"checkpoint: {n / 2**30:.2f} GiB of FP8 codes ({2 * n / 2**30:.2f} GiB as BF16), "
              f"{a.layers} layers, hidden {a.hidden}, ffn {a.ffn}, 128 x 128 blocks")
        print("| layout | RssAnon per rank (MiB) | RssFile per rank (MiB) | matrices each rank "
              "kept in FP8 / dequantised to BF16 |")
        print("|---|---|---|---|")
        for name, flags in (("alone", []), ("PP=2", ["--pp", "2", "--nproc-per-node", "2"]),
                            ("TP=2", ["--tp", "2", "--nproc-per-node", "2"])):
            procs, converted = measure(a.binary, model, flags)
            anon = " / ".join(f"{r.get('RssAnon', 0):.0f}" for r in procs)
            mapped = " / ".join(f"{r.get('RssFile', 0):.0f}" for r in procs)
            print(f"| {name} | {anon} | {mapped} | {' / '.join(converted)} |")
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
