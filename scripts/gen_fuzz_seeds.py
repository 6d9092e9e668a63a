#!/usr/bin/env python3
"""Writes the seed corpora for the libFuzzer targets in tests/fuzz (pure python, no model files).

tests/fuzz/corpus/fuzz_gguf/ and fuzz_model_load/: tiny but complete llama-architecture GGUF
models (byte-level and SentencePiece vocabularies, F32 and F16 weights, v2 and v3), a few
metadata-only files, and truncated copies. tests/fuzz/corpus/fuzz_safetensors/: small
safetensors files (F32/F16/BF16, metadata, scalars) and truncated copies. Every seed is < 20 KB.

Usage: python3 scripts/gen_fuzz_seeds.py [output dir, default tests/fuzz/corpus]
"""
import json
import os
import struct
import sys

# GGUF metadata value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
GGML_F32, GGML_F16 = 0, 1


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(t, v):
    if t == STR:
        return gguf_str(v)
    if t == ARR:
        elem_t, items = v
        out = struct.pack("<IQ", elem_t, len(items))
        return out + b"".join(gguf_value(elem_t, x) for x in items)
    fmt = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
           U64: "Q", I64: "q", F64: "d"}[t]
    return struct.pack("<" + fmt, v)


def gguf(meta, tensors, version=3, alignment=32):
    """meta: list of (key, type, value); tensors: list of (name, ne, ggml_type)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(meta))
    for key, t, v in meta:
        out += gguf_str(key) + struct.pack("<I", t) + gguf_value(t, v)
    offset, blobs = 0, []
    for name, ne, ggml_type in tensors:
        n = 1
        for d in ne:
            n *= d
        nbytes = n * (4 if ggml_type == GGML_F32 else 2)
        out += gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", ggml_type, offset)
        # Small deterministic values: 1/64 in f32 (0x3c800000) or f16 (0x2400).
        blobs.append((offset, (b"\x00\x00\x80\x3c" if ggml_type == GGML_F32 else b"\x00\x24") * (nbytes // (4 if ggml_type == GGML_F32 else 2))))
        offset += (nbytes + alignment - 1) // alignment * alignment
    out += b"\x00" * ((-len(out)) % alignment)
    data = bytearray(offset)
    for off, blob in blobs:
        data[off:off + len(blob)] = blob
    return out + bytes(data)


GPT2_TOKENS = ["H", "e", "l", "o", "\u0120", "w", "r", "d", "i", "t", "He", "ll", "llo", "Hello",
               "\u0120w", "<|endoftext|>"]
GPT2_MERGES = ["H e", "l l", "ll o", "He llo", "\u0120 w"]
SPM_TOKENS = ["<unk>", "<s>", "</s>", "\u2581", "H", "e", "l", "o", "w", "\u2581H", "ll", "<0x0A>",
              "<0x20>", "\u2581w", "i", "t"]


def tokenizer_meta(kind):
    if kind == "gpt2":
        n = len(GPT2_TOKENS)
        return [("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, "gpt2"),
                ("tokenizer.ggml.tokens", ARR, (STR, GPT2_TOKENS)),
                ("tokenizer.ggml.token_type", ARR, (I32, [1] * (n - 1) + [3])),
                ("tokenizer.ggml.merges", ARR, (STR, GPT2_MERGES)),
                ("tokenizer.ggml.bos_token_id", U32, n - 1), ("tokenizer.ggml.eos_token_id", U32, n - 1),
                ("tokenizer.ggml.add_bos_token", BOOL, False)]
    n = len(SPM_TOKENS)
    types = [2, 3, 3] + [1] * 8 + [6, 6] + [1] * 3
    return [("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.pre", STR, "default"),
            ("tokenizer.ggml.tokens", ARR, (STR, SPM_TOKENS)),
            ("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0] + [-float(i) for i in range(n - 3)])),
            ("tokenizer.ggml.token_type", ARR, (I32, types)),
            ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.eos_token_id", U32, 2),
            ("tokenizer.ggml.unknown_token_id", U32, 0), ("tokenizer.ggml.add_space_prefix", BOOL, True)]


def tiny_llama(kind, ggml_type=GGML_F32, version=3, qkv_bias=False):
    d, heads, kv_heads, head_dim, ffn = 8, 2, 1, 4, 16
    vocab = len(GPT2_TOKENS if kind == "gpt2" else SPM_TOKENS)
    arch = "qwen2" if qkv_bias else "llama"
    meta = [("general.architecture", STR, arch), ("general.name", STR, "tiny"),
            ("general.alignment", U32, 32),
            (arch + ".block_count", U32, 1), (arch + ".embedding_length", U32, d),
            (arch + ".attention.head_count", U32, heads), (arch + ".attention.head_count_kv", U32, kv_heads),
            (arch + ".feed_forward_length", U32, ffn), (arch + ".context_length", U32, 64),
            (arch + ".attention.layer_norm_rms_epsilon", F32, 1e-5), (arch + ".rope.freq_base", F32, 10000.0),
            (arch + ".rope.dimension_count", U32, head_dim),
            ("tokenizer.chat_template", STR, "{% for m in messages %}{{ m['content'] }}{% endfor %}")]
    meta += tokenizer_meta(kind)
    t = ggml_type
    tensors = [("token_embd.weight", [d, vocab], t), ("output_norm.weight", [d], GGML_F32),
               ("blk.0.attn_norm.weight", [d], GGML_F32),
               ("blk.0.attn_q.weight", [d, heads * head_dim], t),
               ("blk.0.attn_k.weight", [d, kv_heads * head_dim], t),
               ("blk.0.attn_v.weight", [d, kv_heads * head_dim], t),
               ("blk.0.attn_output.weight", [heads * head_dim, d], t),
               ("blk.0.ffn_norm.weight", [d], GGML_F32),
               ("blk.0.ffn_gate.weight", [d, ffn], t), ("blk.0.ffn_up.weight", [d, ffn], t),
               ("blk.0.ffn_down.weight", [ffn, d], t)]
    if qkv_bias:
        tensors += [("blk.0.attn_q.bias", [heads * head_dim], GGML_F32),
                    ("blk.0.attn_k.bias", [kv_heads * head_dim], GGML_F32),
                    ("blk.0.attn_v.bias", [kv_heads * head_dim], GGML_F32)]
    else:
        tensors += [("output.weight", [d, vocab], t), ("rope_freqs.weight", [head_dim // 2], GGML_F32)]
    return gguf(meta, tensors, version=version)


def metadata_only():
    meta = [("general.architecture", STR, "llama"), ("u8", U8, 7), ("i8", I8, -7), ("u16", U16, 700),
            ("i16", I16, -700), ("i64", I64, -1), ("u64", U64, 1 << 40), ("f64", F64, 0.5),
            ("nested", ARR, (ARR, [(I32, [1, 2]), (STR, ["a", "b"])])),
            ("empty", ARR, (F32, [])), ("bools", ARR, (BOOL, [True, False]))]
    return gguf(meta, [("t", [4, 2], GGML_F32)], version=2)


def safetensors(tensors, dtype, metadata=None):
    size = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * size]}
        offset += n * size
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + bytes(range(256)) * (offset // 256) + bytes(offset % 256)


def write(out_dir, target, name, data):
    assert len(data) < 20 * 1024, (name, len(data))
    path = os.path.join(out_dir, target, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus")
    models = {"tiny_gpt2_f32.gguf": tiny_llama("gpt2"),
              "tiny_spm_f16.gguf": tiny_llama("spm", GGML_F16),
              "tiny_spm_v2.gguf": tiny_llama("spm", version=2),
              "tiny_qwen2_bias.gguf": tiny_llama("gpt2", qkv_bias=True)}
    for target in ("fuzz_gguf", "fuzz_model_load"):
        for name, data in models.items():
            write(out_dir, target, name, data)
        full = models["tiny_gpt2_f32.gguf"]
        for cut in (3, 24, 200, len(full) // 2, len(full) - 1):
            write(out_dir, target, "truncated_%d.gguf" % cut, full[:cut])
    write(out_dir, "fuzz_gguf", "metadata_only_v2.gguf", metadata_only())

    st = {"f32.safetensors": safetensors([("a.weight", [4, 8]), ("b", [8])], "F32", {"format": "pt"}),
          "f16.safetensors": safetensors([("model.embed_tokens.weight", [16, 8]), ("s", [])], "F16"),
          "bf16.safetensors": safetensors([("x", [2, 3, 4, 2])], "BF16", {"k": "v", "n": 1}),
          "empty.safetensors": safetensors([], "F32")}
    for name, data in st.items():
        write(out_dir, "fuzz_safetensors", name, data)
    full = st["f32.safetensors"]
    for cut in (7, 12, len(full) // 2, len(full) - 1):
        write(out_dir, "fuzz_safetensors", "truncated_%d.safetensors" % cut, full[:cut])


if __name__ == "__main__":
    main()
