#!/usr/bin/env python3
"""Writes a GGUF file holding the first N transformer layers of another (metadata, tokenizer and
the embedding/output tensors unchanged, <arch>.block_count set to N). device_check.sh uses it to
carry the default model's real weights to the GPU machine within its upload limit.

Usage: scripts/slice_gguf.py IN.gguf OUT.gguf N_LAYERS
"""
import re
import struct
import sys

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
          11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def skip_value(self, t):
        if t in SCALAR:
            self.take(SCALAR[t])
        elif t == 8:
            self.string()
        elif t == 9:
            et, n = self.take("<I"), self.take("<Q")
            for _ in range(n):
                self.skip_value(et)
        else:
            sys.exit(f"unknown GGUF value type {t}")


def pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def main(src, dst, keep):
    data = open(src, "rb").read()
    r = Reader(data)
    if r.take("<I") != 0x46554747:
        sys.exit(f"{src}: not a GGUF file")
    version, n_tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kvs, alignment = [], 32
    for _ in range(n_kv):
        start = r.pos
        key = r.string()
        t = r.take("<I")
        vstart = r.pos
        r.skip_value(t)
        if key.endswith(".block_count"):
            kvs.append(pack_string(key) + struct.pack("<II", 4, keep))
        else:
            kvs.append(data[start:r.pos])
        if key == "general.alignment":
            alignment = struct.unpack_from("<I", data, vstart)[0]
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        dims = [r.take("<Q") for _ in range(n_dims)]
        infos.append((name, dims, r.take("<I"), r.take("<Q")))
    data_start = (r.pos + alignment - 1) // alignment * alignment
    ends = sorted(off for *_, off in infos)[1:] + [len(data) - data_start]
    end_of = dict(zip(sorted(off for *_, off in infos), ends))
    kept = [i for i in infos
            if not (m := re.match(r"blk\.(\d+)\.", i[0])) or int(m.group(1)) < keep]
    blobs, header_infos, offset = [], [], 0
    for name, dims, t, off in kept:
        blob = data[data_start + off:data_start + end_of[off]]
        header_infos.append(pack_string(name) + struct.pack("<I", len(dims)) +
                            b"".join(struct.pack("<Q", d) for d in dims) +
                            struct.pack("<IQ", t, offset))
        pad = (-len(blob)) % alignment
        blobs.append(blob + b"\0" * pad)
        offset += len(blob) + pad
    head = struct.pack("<IIQQ", 0x46554747, version, len(kept), len(kvs)) + b"".join(kvs) + \
        b"".join(header_infos)
    head += b"\0" * ((-len(head)) % alignment)
    with open(dst, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)
    print(f"{dst}: {keep} layers, {len(kept)} of {n_tensors} tensors, "
          f"{(len(head) + offset) / 2**20:.1f} MiB")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
