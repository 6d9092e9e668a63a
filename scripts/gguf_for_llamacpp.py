#!/usr/bin/env python3
"""Copies a tiny GGUF model written by build/tests/shardlm_tiny_model into one llama.cpp loads, for
scripts/llamacpp_gguf_check.sh: the tiny vocabulary's byte tokens are spelled as GPT-2's byte-level
alphabet (llama.cpp looks bytes up that way), its last extra token becomes "zq" with the one merge
"z q" (llama.cpp needs at least one merge), and the pre-tokenizer is named "gpt-2". Every other
key is copied as it is, and so are the tensors, or with --f32 the Q8_0 ones as F32 (llama.cpp
multiplies Q8_0 weights by activations rounded to Q8_0, shardlm by float activations; F32
weights take that rounding out of the comparison). Needs numpy and llama.cpp's gguf-py on
PYTHONPATH.

  gguf_for_llamacpp.py IN.gguf OUT.gguf [--f32]
"""
import sys

import gguf
import numpy as np
from gguf.quants import dequantize


def byte_alphabet():
    """GPT-2's byte -> character map: printable Latin-1 bytes stand for themselves, the others
    take the characters from U+0100 on, in byte order."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(0x100 + extra)
            extra += 1
    return chars


def main(src, dst, f32=False):
    alphabet = byte_alphabet()
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "tokenizer.ggml.merges",
                                              "tokenizer.ggml.pre"):
            continue
        value = field.contents()
        if key == "tokenizer.ggml.tokens":
            value = [alphabet[i] if i < 256 else s for i, s in enumerate(value)]
            value[-1] = "zq"
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, value, kind, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, value, kind)
    writer.add_string("tokenizer.ggml.pre", "gpt-2")
    writer.add_key_value("tokenizer.ggml.merges", ["z q"], gguf.GGUFValueType.ARRAY,
                         sub_type=gguf.GGUFValueType.STRING)
    for t in reader.tensors:
        if f32 and t.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            writer.add_tensor(t.name, dequantize(t.data, t.tensor_type).astype(np.float32))
        else:
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--f32" in sys.argv[3:])
