#!/usr/bin/env python3
"""Reference logits from PyTorch/transformers for shardlm's logit-parity tests.

Run on a machine with torch + transformers (the lent GPU machine has both; CPU fp32 is used so the
result does not depend on GPU kernels):

  python3 scripts/gen_logit_refs.py --tiny --out tests/data/logits
  python3 scripts/gen_logit_refs.py --tiny-moe --tool build/tests/shardlm_tiny_model --out tests/data/logits
  python3 scripts/gen_logit_refs.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out tests/data/logits

--tiny rebuilds the three tiny models of tests/support/tiny_model.cpp (same configs, same
deterministic weight formula, BF16-rounded like the safetensors the C++ test writes) and dumps the
logits of every position of a fixed token sequence.
--tiny-moe has transformers load the mixture-of-experts references (qwen3_moe, mixtral, qwen2_moe,
deepseek_v2, deepseek_v3, ernie4_5_moe; --only NAME,... for some of them) from the
Hugging Face directories `shardlm_tiny_model --hf --reference NAME` writes (--tool names the
binary), so the checkpoint layout and weights are exactly the ones the C++ test loads.
--gguf loads the default model through transformers' GGUF support (weights dequantised to fp32),
and dumps, for a handful of prompts, per-position top-10 logits, the logits of fixed probe ids,
and a 32-token greedy continuation.
"""
import argparse
import json
import os

import numpy as np
import torch

TINY_TOKENS = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 10, 200, 150, 3, 287, 99]
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colors are",
]
GREEDY_TOKENS = 32
M64 = (1 << 64) - 1


def fnv1a(s):
    h = 0xCBF29CE484222325
    for c in s.encode():
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def det_weights(name, n, scale, offset=0.0):
    """Mirror of testing::det_weights: splitmix64(fnv1a(name) + i) -> [-scale, scale) + offset."""
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) + np.uint64(fnv1a(name))
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    u = (x >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return (offset + np.float32(scale) * (2.0 * u - 1.0).astype(np.float32)).astype(np.float32)


def tiny_specs():
    base = dict(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, ffn_dim=96, vocab=288,
                tied=True, rope_theta=10000.0, llama3=False, eps=1e-5, context=256)
    llama = dict(base, arch="llama", llama3=True)
    qwen2 = dict(base, arch="qwen2", n_kv_heads=1, ffn_dim=128, tied=False, rope_theta=1e6)
    qwen3 = dict(base, arch="qwen3", head_dim=32, rope_theta=1e6, eps=1e-6)
    return {"llama": llama, "qwen2": qwen2, "qwen3": qwen3}


def tiny_tensors(s):
    """Canonical name -> (HF name, shape [out, in], values) exactly as tiny_model_tensors()."""
    d, q, kv, f = s["d_model"], s["n_heads"] * s["head_dim"], s["n_kv_heads"] * s["head_dim"], s["ffn_dim"]
    out = {}

    def add(name, hf, shape, scale, offset=0.0):
        n = int(np.prod(shape))
        out[name] = (hf, shape, det_weights(name, n, scale, offset).reshape(shape))

    add("token_embd.weight", "model.embed_tokens.weight", [s["vocab"], d], 1.0)
    add("output_norm.weight", "model.norm.weight", [d], 0.2, 1.0)
    if not s["tied"]:
        add("output.weight", "lm_head.weight", [s["vocab"], d], 1.0 / np.sqrt(np.float32(d)))
    for layer in range(s["n_layers"]):
        p, h = f"blk.{layer}.", f"model.layers.{layer}."
        rs = lambda k: np.float32(1.0) / np.sqrt(np.float32(k))
        add(p + "attn_norm.weight", h + "input_layernorm.weight", [d], 0.2, 1.0)
        add(p + "attn_q.weight", h + "self_attn.q_proj.weight", [q, d], rs(d))
        add(p + "attn_k.weight", h + "self_attn.k_proj.weight", [kv, d], rs(d))
        add(p + "attn_v.weight", h + "self_attn.v_proj.weight", [kv, d], rs(d))
        add(p + "attn_output.weight", h + "self_attn.o_proj.weight", [d, q], rs(q))
        if s["arch"] == "qwen2":
            add(p + "attn_q.bias", h + "self_attn.q_proj.bias", [q], 0.2)
            add(p + "attn_k.bias", h + "self_attn.k_proj.bias", [kv], 0.2)
            add(p + "attn_v.bias", h + "self_attn.v_proj.bias", [kv], 0.2)
        if s["arch"] == "qwen3":
            add(p + "attn_q_norm.weight", h + "self_attn.q_norm.weight", [s["head_dim"]], 0.2, 1.0)
            add(p + "attn_k_norm.weight", h + "self_attn.k_norm.weight", [s["head_dim"]], 0.2, 1.0)
        add(p + "ffn_norm.weight", h + "post_attention_layernorm.weight", [d], 0.2, 1.0)
        add(p + "ffn_gate.weight", h + "mlp.gate_proj.weight", [f, d], rs(d))
        add(p + "ffn_up.weight", h + "mlp.up_proj.weight", [f, d], rs(d))
        add(p + "ffn_down.weight", h + "mlp.down_proj.weight", [d, f], rs(f))
    return out


def tiny_model(s):
    import transformers
    cfg = dict(hidden_size=s["d_model"], num_hidden_layers=s["n_layers"], num_attention_heads=s["n_heads"],
               num_key_value_heads=s["n_kv_heads"], head_dim=s["head_dim"], intermediate_size=s["ffn_dim"],
               vocab_size=s["vocab"], max_position_embeddings=s["context"], rms_norm_eps=s["eps"],
               rope_theta=s["rope_theta"], tie_word_embeddings=s["tied"], attn_implementation="eager")
    if s["llama3"]:
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    classes = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
               "qwen3": ("Qwen3Config", "Qwen3ForCausalLM")}
    conf_cls, model_cls = (getattr(transformers, c) for c in classes[s["arch"]])
    if s["arch"] == "qwen2":
        cfg["use_sliding_window"] = False
    model = model_cls(conf_cls(**cfg)).float().eval()
    state = {}
    for _, (hf, _, values) in tiny_tensors(s).items():
        # The C++ test stores BF16 safetensors: round the same way (round-to-nearest-even).
        state[hf] = torch.from_numpy(values.copy()).to(torch.bfloat16).to(torch.float32)
    if s["tied"]:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if "rotary" not in m]
    assert not missing and not unexpected, (missing, unexpected)
    return model


def gen_tiny(out_dir):
    for name, s in tiny_specs().items():
        model = tiny_model(s)
        with torch.no_grad():
            logits = model(torch.tensor([TINY_TOKENS])).logits[0].float().numpy()
        path = os.path.join(out_dir, f"tiny_{name}.json")
        with open(path, "w") as f:
            json.dump({"tokens": TINY_TOKENS, "vocab": s["vocab"],
                       "logits": [[round(float(v), 5) for v in row] for row in logits]}, f)
        print("wrote", path, logits.shape)


MOE_REFERENCES = ["qwen3_moe", "mixtral", "qwen2_moe", "deepseek_v2", "deepseek_v3", "ernie4_5_moe"]


def write_tiny_logits(path, vocab, logits):
    with open(path, "w") as f:
        json.dump({"tokens": TINY_TOKENS, "vocab": vocab,
                   "logits": [[round(float(v), 5) for v in row] for row in logits]}, f)
    print("wrote", path, logits.shape)


def gen_tiny_moe(out_dir, tool, names=None):
    import subprocess
    import tempfile
    from transformers import AutoModelForCausalLM
    for name in names or MOE_REFERENCES:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = os.path.join(tmp, name)
            subprocess.run([tool, model_dir, "--hf", "--reference", name], check=True)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                         attn_implementation="eager").eval()
            with torch.no_grad():
                logits = model(torch.tensor([TINY_TOKENS])).logits[0].float().numpy()
        write_tiny_logits(os.path.join(out_dir, f"tiny_{name}.json"), model.config.vocab_size, logits)


def gen_gguf(gguf_path, out_dir, name="smollm2_135m_q4_1.json"):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.dirname(os.path.abspath(gguf_path)), os.path.basename(gguf_path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    vocab = model.config.vocab_size
    probe = [int(i) for i in np.linspace(0, vocab - 1, 64).astype(int)]
    cases = []
    for prompt in PROMPTS:
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
            gen = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)[0][len(ids):].tolist()
        rows = []
        for row in logits:
            top = torch.topk(row, 10)
            rows.append({"top_ids": top.indices.tolist(), "top_logits": [round(float(v), 4) for v in top.values],
                         "probe_logits": [round(float(row[i]), 4) for i in probe]})
        cases.append({"prompt": prompt, "ids": ids, "positions": rows, "greedy": gen})
        print(prompt, "->", repr(tok.decode(gen)))
    path = os.path.join(out_dir, name)
    with open(path, "w") as fh:
        json.dump({"model": f, "probe_ids": probe, "cases": cases}, fh)
    print("wrote", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--tiny-moe", action="store_true")
    ap.add_argument("--tool", default="build/tests/shardlm_tiny_model")
    ap.add_argument("--only", help="comma-separated --tiny-moe references to regenerate")
    ap.add_argument("--gguf")
    ap.add_argument("--out", default="tests/data/logits")
    ap.add_argument("--name", default="smollm2_135m_q4_1.json", help="file name of the --gguf dump")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    if a.tiny:
        gen_tiny(a.out)
    if a.tiny_moe:
        gen_tiny_moe(a.out, a.tool, a.only.split(",") if a.only else None)
    if a.gguf:
        gen_gguf(a.gguf, a.out, a.name)


if __name__ == "__main__":
    main()
