#!/usr/bin/python3
"""Differential fuzzer for the chat-template interpreter: generates random template expressions
and statements, renders each with Python's jinja2 (set up as transformers does, through
scripts/gen_template_refs.make_env) and with shardlm, and reports every case where the two
disagree (different text, or one raises and the other does not; two errors count as agreement).

shardlm renders a whole batch in one process: build/tests/shardlm_tests runs
TemplateDiffCorpus.BatchRender with SHARDLM_TEMPLATE_BATCH_IN/OUT set.

Usage (Debian's /usr/bin/python3 with python3-jinja2):
  scripts/template_diff_fuzz.py [--cases N] [--seed S] [--rounds R]   fuzz, print differences
  scripts/template_diff_fuzz.py --write-corpus                       regenerate the C++ test corpus
      (tests/data/templates/diff_corpus.json: the regression cases below plus --corpus-size random
      cases from a fixed seed, with jinja2's output or error for each)

Differences that shardlm does not try to match (docs/templates.md, "Known differences") are
counted as skipped, never reported: see skip_reason().
"""
import argparse
import copy
import json
import os
import pathlib
import random
import re
import resource
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gen_template_refs import make_env  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "templates" / "diff_corpus.json"
TEST_BINARY = REPO / "build" / "tests" / "shardlm_tests"

CONTEXT = {
    "s": " \u00a0Hello, World\u2003\n",
    "w": "a\u2028b\u3000c\u0085d\u001ce",
    "e": "",
    "u": "caf\u00e9 \u4e2d\u6587",
    "n": 7,
    "neg": -3,
    "big": 2**62,
    "f": 2.675,
    "z": 0,
    "t": True,
    "no": None,
    "l": [3, 1, 2],
    "sl": ["b", "A", "c", "a"],
    "d": {"b": 1, "a": 2},
    "nd": {"x": {"y": [1, 2]}, "k": "v"},
    "objs": [{"name": "a", "v": 1, "on": True}, {"name": "B", "v": 3, "on": False},
             {"name": "c", "v": 2}],
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": " hi\u3000"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"type": "function",
                         "function": {"name": "f", "arguments": {"x": 1}}}]},
        {"role": "tool", "content": "42"},
    ],
    "tools": None,
    "documents": None,
    "add_generation_prompt": False,
}

# Cases found by the fuzzer or named in issue 14; always in the corpus.
REGRESSIONS = [
    "{{ tools | selectattr('type', 'equalto', 'function') | list }}",
    "{{ no | select | list }}{{ no | reject('odd') | list }}{{ undef | map('upper') | list }}",
    "{{ no | map(attribute='x') | list }}{{ 0 | rejectattr('x') | list }}{{ e | select | list }}",
    "{{ no | map('nonexistent') | list }}",
    "{{ 5 | select | list }}",
    "{% set m = {0: 0, 512: 128, 'k': 1} %}{{ m }}{{ m[512] }}{{ m.get(0) }}{{ 512 in m }}",
    "{% for k, v in {1: 'a', 1.5: 'b', none: 'c', true: 'd'}.items() %}{{ k }}={{ v }};{% endfor %}",
    "{{ {1: 'a', 2: 'b'} | tojson }}{{ {1: 'a'} | dictsort }}{{ {(1, 2): 3} }}",
    "{{ {(1, 2): 3} | tojson }}",
    "{{ {[1]: 2} }}",
    "{{ s | trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.split() }}",
    "{{ w.split() }}{{ w.splitlines() }}{{ w.isspace() }}{{ '\u3000 '.isspace() }}",
    "{{ 2.675 | round(2) }} {{ 7 | round(-1) }} {{ 25 | round(-1) }} {{ 2.5 | round }}",
    "{{ 1.1 | round(2, 'floor') }} {{ 7 | round(-1, 'floor') }} {{ f | round(2, 'ceil') }}",
    "{{ 0.125 | round(2) }} {{ -0.5 | round }} {{ 1e300 | round(-300) }} {{ 0.5 | round(400) }}",
    "{{ big * 4 }}",
    "{{ 2 ** 64 }}",
    "{{ '99999999999999999999' | int }}",
    "{{ '%05.2f' | format(f) }}|{{ '%-5s|' % 'ab' }}|{{ '%+d' % 5 }}|{{ '% d' % 5 }}",
    "{{ '%#x %#o %#X %05d %-05d| %.3d %5.1s|' % (255, 8, 255, -3, -3, 5, 'abc') }}",
    "{{ '%(a)s-%(b)05.1f' % {'a': 1, 'b': 2.25} }}{{ '%c%c' % (65, 'b') }}{{ '%e' % 12345.678 }}",
    "{% macro m(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}",
    "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}",
    "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, x=2) }}",
    "{% macro m(a) %}{{ kwargs }}{% endmacro %}{{ m(1, a=2) }}",
    "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}in{% endcall %}",
    "{% macro m() %}x{% endmacro %}{% call m() %}in{% endcall %}",
    "{% macro m(a, b=2) %}{{ varargs | length }}{{ b }}{% endmacro %}{{ m(1, 2, 3, 4) }}",
]

STRINGS = ["", "a", "ab", "Hello World", " x ", "\u00a0pad\u2003", "a,b,,c", "A-b c", "x\ny",
           "\u4e2d\u6587", "%s", "{}", "it's", "1_0", "42", " 12 ", "0x1f", "3.5", "a\u2028b",
           "\u3000", "  ", "abc"]
INTS = [0, 1, -1, 2, 3, 7, 10, -7, 255, 100, 2**31, -(2**31), 2**62, 12345]
FLOATS = [0.0, 0.5, -0.5, 1.5, 2.5, 2.675, 3.14159, 1e16, 1.5e-7, -0.0, 1e100, 123.456, 0.1]
FILTERS0 = ["trim", "upper", "lower", "capitalize", "title", "length", "count", "first", "last",
            "list", "string", "abs", "round", "int", "float", "sort", "reverse", "unique", "min",
            "max", "sum", "items", "dictsort", "tojson", "wordcount", "escape", "select", "reject",
            "default", "join", "center", "indent", "batch(2)"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping",
         "iterable", "sequence", "odd", "even", "divisibleby(3)", "eq(1)", "lt(3)", "in([1, 2])",
         "lower", "upper", "true", "false", "boolean", "callable", "sameas(none)"]
STR_METHODS = ["strip()", "lstrip()", "rstrip()", "split()", "split(',')", "rsplit(' ', 1)",
               "strip('a')", "upper()", "lower()", "title()", "capitalize()", "splitlines()",
               "isspace()", "isdigit()", "startswith('a')", "endswith('c')", "find('b')",
               "count('a')", "replace('a', 'X')", "split(none, 1)", "isalpha()", "isupper()"]
DICT_METHODS = ["items()", "keys()", "values()", "get('a')", "get(1, 'no')", "get('zz', 0)"]
FORMATS = ["%s", "%d", "%5d", "%-5d|", "%05d", "%+d", "% d", "%x", "%#x", "%X", "%o", "%#o",
           "%.2f", "%05.2f", "%-8.3f|", "%+.1f", "%e", "%.3e", "%g", "%10.4g", "%r", "%5s",
           "%-5s|", "%.2s", "%c", "%%", "%i", "%#.3x", "%+05d", "%E", "%G", "%a"]
VARS = list(CONTEXT) + ["undef"]


class Gen:
    """Random template source, bounded in depth so every case renders in microseconds."""

    def __init__(self, rng):
        self.r = rng

    def pick(self, xs):
        return self.r.choice(xs)

    def string_lit(self):
        text = self.pick(STRINGS)
        if self.r.random() < 0.5 and not any(c in text for c in "'\\\n"):
            return "'" + text + "'"  # raw characters, not escapes
        return repr(text)

    def literal(self):
        kind = self.r.randrange(9)
        if kind == 0:
            return self.pick(["none", "true", "false", "None", "True"])
        if kind in (1, 2):
            return str(self.pick(INTS))
        if kind == 3:
            return repr(self.pick(FLOATS))
        if kind in (4, 5):
            return self.string_lit()
        if kind == 6:
            return "[" + ", ".join(self.atom(1) for _ in range(self.r.randrange(4))) + "]"
        if kind == 7:
            n = self.r.randrange(3)
            return "(" + ", ".join(self.atom(1) for _ in range(n)) + ("," if n == 1 else "") + ")"
        keys = [self.pick(["'a'", "'b'", "0", "1", "512", "1.5", "none", "true", "'k'"])
                for _ in range(self.r.randrange(4))]
        return "{" + ", ".join(f"{k}: {self.atom(1)}" for k in keys) + "}"

    def atom(self, depth):
        if depth <= 0 or self.r.random() < 0.5:
            return self.pick(VARS) if self.r.random() < 0.4 else self.literal()
        return "(" + self.expr(depth - 1) + ")"

    def filter_call(self):
        r = self.r.randrange(14)
        if r == 0:
            return f"select('{self.pick(['odd', 'even', 'none', 'string', 'defined'])}')"
        if r == 1:
            return f"selectattr('{self.pick(['on', 'v', 'name', 'x'])}')"
        if r == 2:
            return f"rejectattr('{self.pick(['on', 'v'])}', 'equalto', {self.atom(0)})"
        if r == 3:
            return f"map('{self.pick(['upper', 'string', 'int', 'length', 'trim'])}')"
        if r == 4:
            return f"map(attribute='{self.pick(['name', 'v', 'x', 'role'])}')"
        if r == 5:
            return f"round({self.pick(['0', '1', '2', '-1', '-2', '3'])}" + \
                self.pick(["", ", 'floor'", ", 'ceil'", ", 'common'"]) + ")"
        if r == 6:
            return f"join({self.string_lit()})"
        if r == 7:
            return f"default({self.atom(0)}" + self.pick(["", ", true"]) + ")"
        if r == 8:
            return f"replace({self.string_lit()}, {self.string_lit()})"
        if r == 9:
            return f"format({self.atom(0)}, {self.atom(0)})"
        if r == 10:
            return f"int({self.pick(['0', '-1', 'base=16', '0, 16', '0, 0', '0, 2'])})"
        if r == 11:
            return "tojson(" + self.pick(["", "indent=2", "sort_keys=true", "separators=(',', ':')"]) + ")"
        if r == 12:
            return f"center({self.pick(INTS[:8])})"
        return self.pick(FILTERS0)

    def postfix(self, base):
        r = self.r.randrange(9)
        if r == 0:
            return f"{base}|{self.filter_call()}"
        if r == 1:
            return f"{base} is {self.pick(['', 'not '])}{self.pick(TESTS)}"
        if r == 2:
            return f"{base}.{self.pick(STR_METHODS)}"
        if r == 3:
            return f"{base}.{self.pick(DICT_METHODS)}"
        if r == 4:
            parts = [self.pick(["", "1", "-1", "2", "-2", "none", "0"]) for _ in range(3)]
            return f"{base}[{parts[0]}:{parts[1]}" + (f":{parts[2]}" if self.r.random() < 0.5 else "") + "]"
        if r == 5:
            return f"{base}[{self.pick(['0', '-1', '1', repr('a'), '512', '5', 'none'])}]"
        if r == 6:
            return f"{base}|{self.filter_call()}|list"
        if r == 7:
            return f"{base}.{self.pick(['name', 'role', 'content', 'x', 'a', 'y'])}"
        return f"{base}|{self.filter_call()}|{self.filter_call()}"

    def expr(self, depth=2):
        r = self.r.randrange(10)
        if depth <= 0 or r < 2:
            return self.atom(0)
        if r < 5:
            return self.postfix(self.atom(depth - 1))
        if r == 5:
            op = self.pick(["+", "-", "*", "/", "//", "%", "**", "~", "and", "or", "==", "!=",
                            "<", "<=", ">", ">=", "in", "not in"])
            return f"{self.atom(depth - 1)} {op} {self.atom(depth - 1)}"
        if r == 6:
            return f"{self.pick(['-', 'not ', '+'])}{self.atom(depth - 1)}"
        if r == 7:
            return f"{self.atom(depth - 1)} if {self.atom(depth - 1)} else {self.atom(depth - 1)}"
        if r == 8:
            fmt = "".join(self.pick(FORMATS) + self.pick([" ", "", "|"]) for _ in range(self.r.randrange(1, 3)))
            args = ", ".join(self.atom(0) for _ in range(self.r.randrange(1, 3)))
            return f"{fmt!r} % ({args},)" if self.r.random() < 0.7 else f"{fmt!r} % {self.atom(0)}"
        return f"{self.atom(depth - 1)}|{self.filter_call()}"

    def template(self):
        e = self.expr
        r = self.r.randrange(12)
        if r < 4:
            return "{{ " + e() + " }}"
        if r == 4:
            return "{% for x in " + e(1) + " %}{{ x }}{{ loop.index }},{% else %}E{% endfor %}"
        if r == 5:
            return ("{% if " + e() + " %}A{% elif " + e(1) + " %}B{% else %}C{% endif %}")
        if r == 6:
            return "{% set v = " + e() + " %}{{ v }}|{{ v | " + self.filter_call() + " }}"
        if r == 7:
            params = self.pick(["a", "a, b=" + self.atom(0), "a=1, b=2", ""])
            body = self.pick(["{{ a }}", "{{ varargs }}", "{{ kwargs }}", "{{ a }}{{ varargs }}{{ kwargs }}",
                              "{{ caller() if caller is defined else 'nc' }}"])
            args = ", ".join([self.atom(0) for _ in range(self.r.randrange(3))] +
                             [f"{k}={self.atom(0)}" for k in self.r.sample(["a", "b", "c"], self.r.randrange(2))])
            if self.r.random() < 0.2:
                return ("{% macro m(" + params + ") %}" + body + "{% endmacro %}{% call m(" + args +
                        ") %}in{% endcall %}")
            return "{% macro m(" + params + ") %}" + body + "{% endmacro %}{{ m(" + args + ") }}"
        if r == 8:
            return ("{% set ns = namespace(x=" + self.atom(0) + ") %}{% for i in " + e(1) +
                    " %}{% set ns.x = ns.x ~ i %}{% endfor %}{{ ns.x }}")
        if r == 9:
            return "{% filter " + self.pick(["upper", "trim", "title", "indent(2)", "center(9)"]) + \
                " %} " + "{{ " + e(1) + " }} \n{% endfilter %}"
        if r == 10:
            return "{% for k, v in " + self.pick(["d", "nd", "{1: 2, 'a': 3}"]) + "|dictsort %}{{ k }}:{{ " + \
                e(1).replace("atom", "") + " }};{% endfor %}"
        return "{{ " + e() + " ~ " + e() + " }}"


UNSTABLE = re.compile(r" at 0x[0-9a-f]+>|<generator object|<function |<built-in|bound method|"
                      r"<jinja2\.|<Macro|<Namespace|<class ", re.IGNORECASE)
BIGINT = re.compile(r"\d{19,}")
DICT_VIEW = re.compile(r"dict_(items|keys|values)\(", re.IGNORECASE)
CONST_SLICE = re.compile(r"(\b(none|None|true|false|True|False)|[\d)}\]])\s*\[[^\]]*:")


def ascii_only(text):
    return "".join(c for c in text if ord(c) < 128)


def skip_reason(template, py, cpp):
    """Why a disagreement is not one shardlm tries to fix (docs/templates.md), or None."""
    out = py.get("output", "")
    if UNSTABLE.search(out) or UNSTABLE.search(py.get("error", "")):
        return "python object repr"
    squashed = re.sub(r"[^a-z]", "", out.lower())  # a repr cut up by list, join, center, ...
    if "generatorobject" in squashed:
        return "python object repr"
    if "output" in py and re.search(r"\b(select|reject|selectattr|rejectattr|map|batch|unique)\b",
                                    template) and "wordcount" in template:
        jinja_gen = re.sub(r"\s", "", py["output"])
        if jinja_gen.isdigit() and "output" in cpp and cpp["output"].strip().isdigit():
            return "python object repr (a generator's repr, measured)"
    if "error" in cpp and "64 bits" in cpp["error"] and BIGINT.search(out):
        return "integer beyond 64 bits"
    if "error" in py and re.match(r"(SyntaxError|MemoryError|OverflowError: cannot fit)", py["error"]):
        return "jinja2 fails constant-folding a huge literal at compile time"
    if "output" in py and "output" in cpp and re.search(r"upper|lower|title|capitalize", template):
        if ascii_only(py["output"]) == ascii_only(cpp["output"]):
            return "case mapping of non-ASCII letters"
    if re.search(r"[~+*/%-]\s*not\b", template):
        return "jinja2 reads `not` right after an arithmetic operator as a variable name"
    if re.fullmatch(r"\(.*j\)", out) or re.search(r"[-+]?\d+(\.\d+)?[-+]\d+(\.\d+)?j\)", out):
        return "complex numbers (a negative number to a fractional power)"
    if DICT_VIEW.search(out):
        return "dict view repr (dict_items([...]))"
    if "output" in py and "error" in cpp and CONST_SLICE.search(template):
        return "jinja2 constant-folds a failed slice of a literal into undefined"
    if "error" in py and "inf" in py["error"] and "not defined" in py["error"]:
        return "jinja2 constant-folds an infinite float into the name inf"
    return None


def render_python(env, template):
    try:
        # A fresh copy each time: a case that mutates a list in place (jinja2's sandbox lets some
        # through) must not change the context of the cases after it.
        return {"output": env.from_string(template).render(**copy.deepcopy(CONTEXT))}
    except Exception as e:  # noqa: BLE001 - any failure is an expected error
        return {"error": f"{type(e).__name__}: {e}"}


# jinja2 allocates whatever a template asks for ('x' * 2**34): cap this process's memory so that
# such a case is a MemoryError (an error on both sides) instead of the OOM killer. The shardlm
# child gets the limit lifted again (it has its own size checks).
MEMORY_LIMIT_BYTES = 4 << 30


def limit_memory():
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, hard))


def unlimit_memory():
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


BATCH_TIMEOUT_S = 120  # a whole batch renders in about a second; longer means a case hangs


def run_batch(templates):
    """shardlm's results for the templates, or None when the batch did not finish in time."""
    with tempfile.TemporaryDirectory() as tmp:
        batch_in = pathlib.Path(tmp) / "in.json"
        batch_out = pathlib.Path(tmp) / "out.json"
        batch_in.write_text(json.dumps({"context": CONTEXT, "cases": [{"template": t} for t in templates]},
                                       ensure_ascii=False), encoding="utf-8")
        env = dict(os.environ, SHARDLM_TEMPLATE_BATCH_IN=str(batch_in),
                   SHARDLM_TEMPLATE_BATCH_OUT=str(batch_out))
        try:
            run = subprocess.run([str(TEST_BINARY), "--gtest_filter=TemplateDiffCorpus.BatchRender"],
                                 env=env, capture_output=True, text=True, errors="replace",
                                 timeout=BATCH_TIMEOUT_S, preexec_fn=unlimit_memory)
        except subprocess.TimeoutExpired:
            return None
        if run.returncode != 0:
            sys.exit(f"shardlm batch render failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
        return json.loads(batch_out.read_text(encoding="utf-8"))


def render_shardlm(templates):
    results = run_batch(templates)
    if results is not None:
        return results
    while len(templates) > 1:  # a case hangs: halve the batch until it is found
        half = templates[:len(templates) // 2]
        templates = half if run_batch(half) is None else templates[len(templates) // 2:]
    sys.exit(f"HANG: shardlm did not finish rendering {templates[0]!r} in {BATCH_TIMEOUT_S} s")


def agree(py, cpp):
    if "error" in py or "error" in cpp:
        return "error" in py and "error" in cpp
    return py["output"] == cpp["output"]


def compare(templates, env, verbose=True):
    cpp_results = render_shardlm(templates)
    stats = {"cases": len(templates), "agree": 0, "differ": 0, "skipped": 0}
    rows = []
    for template, cpp in zip(templates, cpp_results):
        py = render_python(env, template)
        if agree(py, cpp):
            stats["agree"] += 1
            rows.append((template, py))
            continue
        reason = skip_reason(template, py, cpp)
        if reason:
            stats["skipped"] += 1
            continue
        stats["differ"] += 1
        if verbose:
            print(f"DIFF {template!r}\n  jinja2:  {py}\n  shardlm: {cpp}")
    return stats, rows


def write_corpus(env, size):
    """Writes the regression cases and `size` random ones (fixed seed), minus known differences."""
    gen = Gen(random.Random(14))
    templates = REGRESSIONS + [gen.template() for _ in range(size)]
    cpp_results = render_shardlm(templates)
    cases, differ = [], 0
    for template, cpp in zip(templates, cpp_results):
        py = render_python(env, template)
        if not agree(py, cpp):
            if skip_reason(template, py, cpp):
                continue
            differ += 1
            print(f"DIFF {template!r}\n  jinja2:  {py}\n  shardlm: {cpp}")
        cases.append({"template": template, **py})
    import jinja2
    CORPUS.write_text(json.dumps({"jinja2": jinja2.__version__, "context": CONTEXT, "cases": cases},
                                 indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases written to {CORPUS.relative_to(REPO)} ({differ} still differ)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=2000, help="cases per round")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write-corpus", action="store_true")
    ap.add_argument("--corpus-size", type=int, default=1500)
    args = ap.parse_args()
    limit_memory()
    env = make_env()
    if args.write_corpus:
        write_corpus(env, args.corpus_size)
        return
    total = {"cases": 0, "agree": 0, "differ": 0, "skipped": 0}
    for round_index in range(args.rounds):
        gen = Gen(random.Random(args.seed + round_index))
        templates = REGRESSIONS + [gen.template() for _ in range(args.cases)]
        stats, _ = compare(templates, env)
        for k in total:
            total[k] += stats[k]
    print(f"jinja2 vs shardlm: {total['cases']} cases, {total['agree']} agree, "
          f"{total['differ']} differ, {total['skipped']} skipped (known differences)")
    sys.exit(1 if total["differ"] else 0)


if __name__ == "__main__":
    main()
