#!/usr/bin/python3
"""Renders every chat template in tests/data/templates/sources over every conversation in
tests/data/templates/conversations with Python's jinja2, the way transformers' apply_chat_template
does, and writes the expected outputs the C++ renderer is tested against.

transformers' setup, reproduced here:
  * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    (plus its {% generation %} tag, which only marks assistant text: it renders its body);
  * a `tojson` filter replaced by json.dumps(x, ensure_ascii=False, indent=..., separators=...,
    sort_keys=...), so non-ASCII text is kept and no HTML escaping happens;
  * globals raise_exception(message) and strftime_now(format);
  * render(messages=..., tools=... or None, documents=None, add_generation_prompt=...,
    bos_token=..., eos_token=..., **extra variables).

Every context also carries date_string = "26 Jul 2024" so templates that stamp today's date render
the same on every day.

It also renders the language-feature cases of tests/data/templates/language_cases.json (one small
template each, over a shared context) into language_expected.json.

Output, per (template, conversation, add_generation_prompt):
  expected/<template>/<conversation>.gen.txt / .nogen.txt  the exact rendered text, or
  expected/<template>/<conversation>.gen.err / .nogen.err  the exception, where Python raises.

Usage: /usr/bin/python3 scripts/gen_template_refs.py   (Debian python3-jinja2 3.1.x)
"""
import json
import pathlib
import shutil
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "templates"
DATE_STRING = "26 Jul 2024"


class GenerationTag(Extension):
    """{% generation %}...{% endgeneration %}: renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, meta, conversation, add_generation_prompt):
    template = env.from_string(source)
    context = {
        "messages": conversation["messages"],
        "tools": conversation.get("tools"),
        "documents": None,
        "add_generation_prompt": add_generation_prompt,
        "bos_token": meta.get("bos_token", ""),
        "eos_token": meta.get("eos_token", ""),
        "date_string": DATE_STRING,
    }
    context.update(conversation.get("vars", {}))
    return template.render(**context)


def render_language_cases(env):
    spec = json.loads((ROOT / "language_cases.json").read_text(encoding="utf-8"))
    results = []
    for case in spec["cases"]:
        entry = {"name": case["name"]}
        try:
            entry["output"] = env.from_string(case["template"]).render(**spec["context"])
        except Exception as e:  # noqa: BLE001
            entry["error"] = f"{type(e).__name__}: {e}"
        results.append(entry)
    (ROOT / "language_expected.json").write_text(
        json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(results)


def main():
    meta_all = json.loads((ROOT / "sources.json").read_text(encoding="utf-8"))
    conversations = sorted((ROOT / "conversations").glob("*.json"))
    out_root = ROOT / "expected"
    if out_root.exists():
        shutil.rmtree(out_root)
    env = make_env()
    counts = {"ok": 0, "err": 0}
    for source_path in sorted((ROOT / "sources").glob("*.jinja")):
        name = source_path.stem
        if name not in meta_all:
            sys.exit(f"{name}: missing from sources.json")
        source = source_path.read_text(encoding="utf-8")
        out_dir = out_root / name
        out_dir.mkdir(parents=True)
        for conv_path in conversations:
            conversation = json.loads(conv_path.read_text(encoding="utf-8"))
            for flag, suffix in ((True, "gen"), (False, "nogen")):
                stem = f"{conv_path.stem}.{suffix}"
                try:
                    text = render(env, source, meta_all[name], conversation, flag)
                except Exception as e:  # noqa: BLE001 - any failure is an expected error
                    (out_dir / f"{stem}.err").write_text(f"{type(e).__name__}: {e}\n", encoding="utf-8")
                    counts["err"] += 1
                    continue
                (out_dir / f"{stem}.txt").write_bytes(text.encode("utf-8"))
                counts["ok"] += 1
    print(f"jinja2 {jinja2.__version__}: {counts['ok']} renders, {counts['err']} expected errors")
    print(f"{render_language_cases(env)} language cases")


if __name__ == "__main__":
    main()
