#!/usr/bin/env python3
"""Builds the all-of-Unicode pre-tokenizer reference that tests/unit/test_tokenizer_unicode.cpp
checks shardlm's PCRE2 pre-tokenizers against, with Hugging Face `tokenizers` (Oniguruma regexes,
Rust char classes) as the reference.

  python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers
  /tmp/tokvenv/bin/python scripts/gen_unicode_pretok_refs.py

For every code point c (surrogates excepted) and every byte-level pre-tokenizer shardlm supports,
built from the committed tests/data/tokenizers/<dir>/tokenizer.json exactly as HF loads it, the
script splits a few probe strings around c. Each probe reveals some of c's classes in the patterns
(\\s, \\p{L}, \\p{N}, [\\r\\n], case-insensitive contraction letters, Digits' numerics). A probe's
outcome is the lengths of its pieces in code points (one digit each: probes are a few characters
long); a code point's signature is its outcomes joined by spaces. Consecutive code points with the
same signature form one range.

It also writes src/tokenizer/unicode_class_tables.cpp: the code points whose class in HF's engines
(Oniguruma's \\s, \\p{L}, \\p{N}, \\p{P}, \\p{S}, \\p{M} for the regexes; Rust's
char::is_numeric for Digits) differs from the class the system's PCRE2 (libpcre2-8, UTF + UCP,
called through ctypes) gives them, plus every non-ASCII white space character (PCRE2 versions
disagree about U+0085 and U+180E). shardlm's pre-tokenizer matches those code points through
stand-ins of the HF class (pre_tokenizer.cpp, unicode_classes.cpp; the script checks that each
stand-in is of its class to both engines).

Writes tests/data/tokenizers/unicode_pretok_refs.json:
  {"tokenizers_version": ..., "placeholder": "@", "probes": ["a@b", ...],
   "pre_tokenizers": {"<dir>": {"signatures": ["3 111 ...", ...],
                                "ranges": [first_code_point, signature_index, ...]}}}
A range runs up to the next range's first code point (the last one to U+10FFFF); signature index -1
marks the surrogates, which are not text.
"""

import ctypes
import ctypes.util
import json
import multiprocessing
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "tokenizers"
OUT = DATA / "unicode_pretok_refs.json"
TABLES = ROOT / "src" / "tokenizer" / "unicode_class_tables.cpp"

# The tokenizer.json files whose pre-tokenizers are checked: ByteLevel with its GPT-2 regex,
# Digits + ByteLevel (SmolLM), and the Llama 3, Qwen2, DeepSeek-LLM and DeepSeek-V3 Split patterns.
PRE_TOKENIZERS = ["bpe_gpt2", "bpe_smollm", "bpe_llama3", "bpe_qwen2", "bpe_deepseek_llm",
                  "bpe_deepseek3"]

PLACEHOLDER = "@"  # stands for the code point under test; no probe uses it literally
PROBES = [
    "a@b",   # joins letters (\p{L})
    "1@2",   # joins numbers (\p{N}, Digits)
    " @a",   # what an optional leading space attaches to: \s, punctuation or a letter
    "@'t",   # a contraction right after c
    "@@\n",  # runs of c and newline handling (\s*[\r\n]+, [\r\n]*)
    "'@x",   # case-insensitive contractions: c as s, t, m, d
    "'@ex",  # c as r or v
    "'r@x",  # c as e
    "'@lx",  # c as the first l of 'll
    "'l@x",  # c as the second l of 'll
]
LAST = 0x110000
SURROGATES = range(0xD800, 0xE000)


def outcome(pre, text):
    """Piece lengths in code points, one digit each."""
    return "".join(str(end - start) for _, (start, end) in pre.pre_tokenize_str(text))


def signatures(args):
    """Signatures of the code points in [first, last) under one pre-tokenizer."""
    name, first, last = args
    pre = Tokenizer.from_file(str(DATA / name / "tokenizer.json")).pre_tokenizer
    probes = [p.split(PLACEHOLDER) for p in PROBES]
    out = []
    for cp in range(first, last):
        if cp in SURROGATES:
            out.append(None)
            continue
        c = chr(cp)
        out.append(" ".join(outcome(pre, c.join(parts)) for parts in probes))
    return out


def run_length(sigs):
    """Signature table and flat [first, index, ...] ranges."""
    table, index, ranges, previous = [], {}, [], object()
    for cp, sig in enumerate(sigs):
        if sig == previous:
            continue
        previous = sig
        if sig is None:
            ranges += [cp, -1]
            continue
        if sig not in index:
            index[sig] = len(table)
            table.append(sig)
        ranges += [cp, index[sig]]
    return table, ranges


# Classes as unicode_classes.h names them, and the regex that tests each.
SPACE, LETTER, NUMBER, OTHER = "kSpace", "kLetter", "kNumber", "kOther"
REGEX_CLASSES = [(SPACE, r"\s"), (LETTER, r"\p{L}"), (NUMBER, r"\p{N}"), ("kPunct", r"\p{P}"),
                 ("kSymbol", r"\p{S}"), ("kMark", r"\p{M}")]


def hf_regex_classes(args):
    """Oniguruma's class of each code point in [first, last), as HF's Split regexes see it."""
    from tokenizers import Regex, pre_tokenizers
    first, last = args
    tests = [(cls, pre_tokenizers.Split(Regex(p), behavior="removed")) for cls, p in REGEX_CLASSES]
    out = []
    for cp in range(first, last):
        c = chr(cp) if cp not in SURROGATES else None
        out.append(next((cls for cls, t in tests if c and not t.pre_tokenize_str(c)), OTHER))
    return out


def hf_digits_classes(args):
    """NUMBER where HF's Digits pre-tokenizer (Rust's char::is_numeric) splits a code point off."""
    from tokenizers import pre_tokenizers
    first, last = args
    digits = pre_tokenizers.Digits(individual_digits=False)
    return [NUMBER if cp not in SURROGATES and len(digits.pre_tokenize_str("a" + chr(cp))) == 2
            else OTHER for cp in range(first, last)]


class Pcre2:
    """The system's PCRE2, compiled as pre_tokenizer.cpp compiles it (UTF + UCP)."""
    UTF, UCP, ANCHORED = 0x00080000, 0x00020000, 0x80000000

    def __init__(self):
        self.lib = ctypes.CDLL(ctypes.util.find_library("pcre2-8") or "libpcre2-8.so.0")
        self.lib.pcre2_compile_8.restype = ctypes.c_void_p
        self.lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                             ctypes.POINTER(ctypes.c_int),
                                             ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
        self.lib.pcre2_match_data_create_8.restype = ctypes.c_void_p
        self.lib.pcre2_match_data_create_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        self.lib.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                           ctypes.c_size_t, ctypes.c_uint32, ctypes.c_void_p,
                                           ctypes.c_void_p]
        self.data = self.lib.pcre2_match_data_create_8(1, None)
        buf = ctypes.create_string_buffer(32)
        self.lib.pcre2_config_8(10, buf)  # PCRE2_CONFIG_UNICODE_VERSION
        self.unicode_version = buf.value.decode()
        buf = ctypes.create_string_buffer(32)
        self.lib.pcre2_config_8(11, buf)  # PCRE2_CONFIG_VERSION
        self.version = buf.value.decode()

    def compile(self, pattern):
        error, offset = ctypes.c_int(), ctypes.c_size_t()
        raw = pattern.encode()
        return self.lib.pcre2_compile_8(raw, len(raw), self.UTF | self.UCP, ctypes.byref(error),
                                        ctypes.byref(offset), None)

    def matches(self, code, cp):
        raw = chr(cp).encode()
        return self.lib.pcre2_match_8(code, raw, len(raw), 0, self.ANCHORED, self.data, None) > 0

    def classes(self, tests):
        codes = [(cls, self.compile(p)) for cls, p in tests]
        return [OTHER if cp in SURROGATES else
                next((cls for cls, code in codes if self.matches(code, cp)), OTHER)
                for cp in range(LAST)]


def overrides(want, have, spaces):
    """[first, last, class] ranges where want differs from have, or want is non-ASCII space."""
    out = []
    for cp in range(0x80, LAST):
        if want[cp] == have[cp] and not (spaces and want[cp] == SPACE):
            continue
        assert not (want[cp] == SPACE and cp >= 0x10000), "no four-byte space stand-in"
        if out and out[-1][1] == cp - 1 and out[-1][2] == want[cp]:
            out[-1][1] = cp
        else:
            out.append([cp, cp, want[cp]])
    return out


def table_source(name, ranges):
    rows = [f"    {{0x{a:X}, 0x{b:X}, CharClass::{cls}}}," for a, b, cls in ranges]
    return (f"const ClassRange {name}[] = {{\n" + "\n".join(rows) + "\n};\n"
            f"const size_t {name}Count = sizeof({name}) / sizeof({name}[0]);\n")


def check_stand_ins(regex, pcre2_regex):
    """Every stand-in in unicode_classes.cpp is of its class to HF and to PCRE2 alike."""
    import re
    source = (ROOT / "src" / "tokenizer" / "unicode_classes.cpp").read_text()
    block = source[source.index("kStandIns[3]"):]
    block = block[:block.index("};")]
    rows = [[int(v, 16) for v in re.findall(r"0x([0-9A-F]+)", line)]
            for line in block.splitlines() if line.strip().startswith("{0x")]
    classes = [cls for cls, _ in REGEX_CLASSES] + [OTHER]
    assert len(rows) == 3 and all(len(r) == len(classes) for r in rows), "kStandIns' shape"
    for length, row in enumerate(rows, start=2):
        for cls, cp in zip(classes, row):
            if cp == 0:
                continue
            assert len(chr(cp).encode()) == length, f"U+{cp:04X} is not {length} bytes"
            assert regex[cp] == cls and pcre2_regex[cp] == cls, \
                f"stand-in U+{cp:04X} for {cls}: HF {regex[cp]}, PCRE2 {pcre2_regex[cp]}"


def write_tables(pool):
    chunks = [(first, min(first + 0x8000, LAST)) for first in range(0, LAST, 0x8000)]
    regex = [c for part in pool.map(hf_regex_classes, chunks) for c in part]
    digits = [c for part in pool.map(hf_digits_classes, chunks) for c in part]
    pcre2 = Pcre2()
    pcre2_regex = pcre2.classes(REGEX_CLASSES)
    pcre2_digits = pcre2.classes([(NUMBER, r"\p{N}")])
    check_stand_ins(regex, pcre2_regex)
    regex_ranges = overrides(regex, pcre2_regex, spaces=True)
    digits_ranges = overrides(digits, pcre2_digits, spaces=False)
    TABLES.write_text(
        f"// Generated by scripts/gen_unicode_pretok_refs.py from HF tokenizers "
        f"{tokenizers.__version__} and PCRE2\n// {pcre2.version} (Unicode "
        f"{pcre2.unicode_version}); do not edit. The code points whose class HF's engines see\n"
        "// differently from PCRE2 (UTF + UCP), and every non-ASCII white space character.\n"
        '#include "tokenizer/unicode_classes.h"\n\nnamespace shardlm::unicode_classes {\n'
        "// clang-format off\n\n// Oniguruma's \\s, \\p{L}, \\p{N}, \\p{P}, \\p{S}, \\p{M} "
        "(HF Split and ByteLevel regexes).\n"
        + table_source("kRegexOverrides", regex_ranges)
        + "\n// Rust's char::is_numeric (HF Digits) against PCRE2's \\p{N}.\n"
        + table_source("kDigitsOverrides", digits_ranges)
        + "\n// clang-format on\n}  // namespace shardlm::unicode_classes\n")
    print(f"{TABLES.relative_to(ROOT)}: {len(regex_ranges)} regex and {len(digits_ranges)} "
          f"Digits override ranges against PCRE2 {pcre2.version}")


def main():
    chunk = 0x8000
    result = {"tokenizers_version": tokenizers.__version__, "placeholder": PLACEHOLDER,
              "probes": PROBES, "pre_tokenizers": {}}
    with multiprocessing.Pool() as pool:
        write_tables(pool)
        for name in PRE_TOKENIZERS:
            jobs = [(name, first, min(first + chunk, LAST)) for first in range(0, LAST, chunk)]
            sigs = [s for part in pool.map(signatures, jobs) for s in part]
            table, ranges = run_length(sigs)
            result["pre_tokenizers"][name] = {"signatures": table, "ranges": ranges}
            print(f"{name}: {len(table)} signatures, {len(ranges) // 2} ranges")
    OUT.write_text(json.dumps(result, ensure_ascii=True, separators=(",", ":")) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
