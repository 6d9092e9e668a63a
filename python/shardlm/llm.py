"""LLM: offline batch generation with vLLM's (and FastDeploy's) Python API over shardlm's engine.

    from shardlm import LLM, SamplingParams
    llm = LLM(model="model.gguf")
    for out in llm.generate(["Hello, my name is"], SamplingParams(temperature=0, max_tokens=32)):
        print(out.outputs[0].text)
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import sys
import weakref
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _core
from .group import Group, GroupSpec, parse_ips, say
from .outputs import CompletionOutput, CompletionOutputs, Logprob, RequestOutput
from .progress import progress_bar
from .sampling_params import SamplingParams
from .tokenizer import Message, Tokenizer, check_conversation

PromptType = Union[str, List[int], Dict[str, Any]]


class LLM:
    """A model loaded for offline generation (continuous batching over every prompt given).

    Args:
        model: a GGUF file or a Hugging Face model directory (None: the default model,
            SmolLM2-135M-Instruct, fetched on first use).
        tensor_parallel_size: ranks each layer is split over (the total over all nodes, as in
            FastDeploy).
        pipeline_parallel_size: pipeline stages (the layers split into consecutive parts).
        ips: the nodes of a multi-node group, 'ip1,ip2' (the first is the master); the same
            script runs on every node. Without it the whole group runs on this machine.
        device: 'cpu', 'cuda' or None/'auto' (a GPU when the build has CUDA and one is visible).
        max_model_len: context length per request (default: the model's, at most 4096).
        gpu_memory_utilization: share of the GPU's memory the KV cache may fill up to.
        load_format: 'auto', or 'dummy' (random weights of the model's shapes).
        max_num_seqs, max_num_batched_tokens, block_size, enable_prefix_caching, enforce_eager:
            as the `shardlm serve` flags of the same names.
        kv_cache_memory: bytes of keys and values (default 512 MiB on the CPU).
        quantization: None, or 'fp8' (a CUDA GPU: linear layers quantised at load to FP8 E4M3;
            FP8 checkpoints as published need nothing).
        kv_cache_dtype: 'auto', 'bf16', or 'fp8'/'fp8_e4m3' (a CUDA GPU: FP8 E4M3 keys and
            values, twice the tokens per GiB).
        threads: CPU threads per rank (default: all cores).
        dist_init_addr: 'host:port' of the master's rendezvous for a multi-node group.
        cluster_token: the secret every node of a multi-host group shares
            (default: $SHARDLM_CLUSTER_TOKEN).
        dist_timeout: seconds for every rank to reach the rendezvous.
        tp_exact: exact tensor parallelism (the CLI's --tp-exact): bit-identical to one process,
            slower; by default Megatron TP, equal to one process within float rounding.
        distributed_executor_backend: None/'mp' (processes on this machine or over ips) or 'ray'
            (the ranks placed on a running Ray cluster).
        generation_config: 'auto' (generate() without sampling_params uses the model
            directory's generation_config.json temperature, top_p, top_k, min_p and
            repetition_penalty, as vLLM does), 'vllm' (SamplingParams() as it is), or a directory
            holding a generation_config.json.
        seed: prompts whose SamplingParams have no seed get seeds that follow from this one in
            order, so a script run again gives the same outputs (vLLM's meaning).
        trust_remote_code, tokenizer, dtype: accepted for vLLM scripts; shardlm runs no
            checkpoint code, uses the model's own tokenizer and its stored types.
    """

    def __init__(self, model: Optional[str] = None, *, tensor_parallel_size: int = 1,
                 pipeline_parallel_size: int = 1, ips: Optional[Union[str, List[str]]] = None,
                 device: Optional[str] = None, max_model_len: Optional[int] = None,
                 gpu_memory_utilization: float = 0.9, load_format: str = "auto",
                 max_num_seqs: Optional[int] = None,
                 max_num_batched_tokens: Optional[int] = None, block_size: int = 16,
                 enable_prefix_caching: bool = True, enforce_eager: bool = False,
                 kv_cache_memory: Optional[int] = None, threads: Optional[int] = None,
                 dist_init_addr: Optional[str] = None, cluster_token: Optional[str] = None,
                 dist_timeout: float = 60.0, distributed_executor_backend: Optional[str] = None,
                 trust_remote_code: bool = False, tokenizer: Optional[str] = None,
                 dtype: Optional[str] = None, seed: Optional[int] = None,
                 tp_exact: bool = False, quantization: Optional[str] = None,
                 kv_cache_dtype: str = "auto", generation_config: str = "auto") -> None:
        self._engine = None
        self._sampling_defaults = generation_config_defaults(generation_config, model)
        need(seed is None or (isinstance(seed, int) and seed >= 0), "seed", seed,
             "use None or a non-negative integer")
        self._seeds = SeedSequence(seed)
        self._group: Optional[Group] = None
        self._ray = None
        args = engine_args(model, device, max_model_len, gpu_memory_utilization, load_format,
                           max_num_seqs, max_num_batched_tokens, block_size,
                           enable_prefix_caching, enforce_eager, kv_cache_memory, threads)
        need(quantization in (None, "fp8"), "quantization", quantization, "use None or 'fp8'")
        need(kv_cache_dtype in ("auto", "bf16", "fp8", "fp8_e4m3"), "kv_cache_dtype",
             kv_cache_dtype, "use 'auto', 'bf16', 'fp8' or 'fp8_e4m3'")
        args.quantization = quantization or ""
        args.kv_cache_dtype = kv_cache_dtype
        spec = group_spec(tensor_parallel_size, pipeline_parallel_size, ips, dist_init_addr,
                          cluster_token, dist_timeout)
        spec.tp_exact = bool(tp_exact)
        backend = distributed_executor_backend
        if backend not in (None, "mp", "ray"):
            raise ValueError(f"distributed_executor_backend={backend!r}: use None, 'mp' or 'ray'")
        world = spec.tp * spec.pp
        if backend == "ray":
            from .ray_executor import RayGroup  # needs the ray package only here
            self._ray = RayGroup(spec, rank_argv(args))
            place = self._ray.place
        elif world > 1 or spec.ips:
            self._group = Group(spec, rank_argv(args))
            place = self._group.place
        else:
            place = None
        self.is_master = self._group is None or self._group.is_master
        _finalizer(self)
        if not self.is_master:
            say(f"this node ({place.info.node_rank} of {place.info.nnodes}) runs worker ranks "
                "of the group; the master node generates, and this script's end waits until it "
                "ends the group")
            return
        try:
            self._engine = _core.OfflineEngine.create(args, place)
        except BaseException:
            self._stop_ranks()
            raise
        self._max_model_len = self._engine.max_model_len()

    # FastDeploy's name.
    def _check_master(self) -> bool:
        """True on the node that generates (the first of ips, or the only one)."""
        return self.is_master

    def get_default_sampling_params(self) -> SamplingParams:
        """What generate() and chat() use without sampling_params: SamplingParams() with the
        model's generation_config.json sampling fields (generation_config='auto')."""
        return SamplingParams(**self._sampling_defaults)

    def get_tokenizer(self) -> Tokenizer:
        """The model's tokenizer (encode, decode, apply_chat_template)."""
        return Tokenizer(self._require_engine("get_tokenizer"))

    def generate(self, prompts: Union[PromptType, Sequence[PromptType]],
                 sampling_params: Optional[Union[SamplingParams, Sequence[SamplingParams]]] = None,
                 use_tqdm: bool = True) -> List[RequestOutput]:
        """Generates for every prompt (continuous batching) and returns one RequestOutput per
        prompt, in order. A prompt is a string, a list of token ids, or {"prompt": str} /
        {"prompt_token_ids": [...]}; a single prompt may be given alone. sampling_params: one for
        all, or one per prompt (default: SamplingParams()). The GIL is released while the engine
        runs; Ctrl-C aborts the batch and raises KeyboardInterrupt, leaving the LLM usable.
        On a worker node of a multi-node group it returns [] (the master generates)."""
        if not self.is_master:
            return []
        engine = self._require_engine("generate")
        texts, ids = self._encode_prompts(normalize_prompts(prompts))
        return self._run(texts, ids, sampling_params, use_tqdm)

    def chat(self, messages: Union[List[Message], List[List[Message]]],
             sampling_params: Optional[Union[SamplingParams, Sequence[SamplingParams]]] = None,
             use_tqdm: bool = True, add_generation_prompt: bool = True,
             chat_template_kwargs: Optional[Dict[str, Any]] = None) -> List[RequestOutput]:
        """Generates replies to one conversation ([{"role": "user", "content": ...}, ...]) or a
        list of conversations, each rendered with the model's chat template."""
        if not self.is_master:
            return []
        tokenizer = self.get_tokenizer()
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        texts, ids = [], []
        for conversation in conversations:
            check_conversation(conversation)
            text = tokenizer.apply_chat_template(conversation, tokenize=False,
                                                 add_generation_prompt=add_generation_prompt,
                                                 **(chat_template_kwargs or {}))
            texts.append(text)
            ids.append(self._engine.encode(text, False))  # the template wrote BOS itself
        return self._run(texts, ids, sampling_params, use_tqdm)

    def shutdown(self) -> int:
        """Ends the group (master) or waits for the master to end it (other nodes); frees the
        model. Returns this node's rank processes' exit status (0 when all ended cleanly).
        Called at exit as well."""
        self._engine = None  # the master's runner ends the group as it goes
        return self._stop_ranks()

    # --- internals ---

    def _require_engine(self, what: str):
        if self._engine is None:
            if not self.is_master:
                raise RuntimeError(f"{what}: this node runs worker ranks only; call it on the "
                                   "master node (llm.is_master / llm._check_master())")
            raise RuntimeError(f"{what}: the LLM was shut down")
        return self._engine

    def _encode_prompts(self, prompts: List[Any]):
        texts, ids = [], []
        for i, p in enumerate(prompts):
            if isinstance(p, dict):
                p = p.get("prompt_token_ids", p.get("prompt"))
            if isinstance(p, str):
                texts.append(p)
                ids.append(self._engine.encode(p, True))
            elif isinstance(p, (list, tuple)) and all(isinstance(t, int) for t in p):
                texts.append(None)
                ids.append(list(p))
            else:
                raise ValueError(f"prompts[{i}]: expected a string, a list of token ids or "
                                 f"{{'prompt': ...}} / {{'prompt_token_ids': [...]}}, got {p!r}")
        return texts, ids

    def _run(self, texts, ids, sampling_params, use_tqdm: bool) -> List[RequestOutput]:
        if sampling_params is None:
            sampling_params = self.get_default_sampling_params()
        params = [self._seeds.seeded(p) for p in per_prompt(sampling_params, len(ids))]
        core = [p._for_prompt_len(len(i), self._max_model_len) for p, i in zip(params, ids)]
        if len({id(c) for c in core}) == 1:
            core = core[:1]
        with progress_bar(len(ids), use_tqdm) as bar:
            results = self._engine.generate(ids, core, bar.update if bar else None)
        return [self._output(n, texts[n], r, params[n]) for n, r in enumerate(results)]

    def _output(self, n: int, text: Optional[str], r, params: SamplingParams) -> RequestOutput:
        logprobs, cumulative = None, None
        if params.logprobs is not None:
            logprobs = [logprob_dict(self._engine, t) for t in r.logprobs]
            cumulative = sum(t.logprob for t in r.logprobs)
        out = CompletionOutput(index=0, text=r.text, token_ids=list(r.token_ids),
                               cumulative_logprob=cumulative, logprobs=logprobs,
                               finish_reason=r.finish_reason)
        return RequestOutput(request_id=str(n), prompt=text,
                             prompt_token_ids=list(r.prompt_token_ids),
                             outputs=CompletionOutputs([out]))

    def _stop_ranks(self) -> int:
        status = 0
        if self._group is not None:
            group, self._group = self._group, None
            status = group.wait(timeout=60 if group.is_master else None)
        if self._ray is not None:
            ray, self._ray = self._ray, None
            status = ray.stop()
        return status

    def __del__(self) -> None:
        try:
            self.shutdown()
        except Exception:
            pass


def engine_args(model, device, max_model_len, gpu_memory_utilization, load_format, max_num_seqs,
                max_num_batched_tokens, block_size, enable_prefix_caching, enforce_eager,
                kv_cache_memory, threads):
    """EngineArgs from the keyword arguments; ValueError naming the first bad one."""
    need(load_format in ("auto", "dummy"), "load_format", load_format, "use 'auto' or 'dummy'")
    need(device in (None, "auto", "cpu", "cuda"), "device", device,
         "use 'cpu', 'cuda' or 'auto'")
    need(max_model_len is None or positive_int(max_model_len), "max_model_len", max_model_len,
         "it must be a positive integer (or None: the model's, at most 4096)")
    need(isinstance(gpu_memory_utilization, (int, float)) and 0 < gpu_memory_utilization <= 1,
         "gpu_memory_utilization", gpu_memory_utilization, "it must be in (0, 1]")
    need(max_num_seqs is None or positive_int(max_num_seqs), "max_num_seqs", max_num_seqs,
         "it must be a positive integer (or None: 256 on a GPU, 64 on the CPU)")
    need(max_num_batched_tokens is None or positive_int(max_num_batched_tokens),
         "max_num_batched_tokens", max_num_batched_tokens,
         "it must be a positive integer (or None: 8192 on a GPU, 512 on the CPU)")
    need(positive_int(block_size), "block_size", block_size, "it must be a positive integer")
    need(kv_cache_memory is None or positive_int(kv_cache_memory), "kv_cache_memory",
         kv_cache_memory, "it must be a number of bytes")
    need(threads is None or positive_int(threads), "threads", threads,
         "it must be a positive integer (or None: all cores)")
    if model is not None and load_format != "dummy" and not os.path.exists(model):
        raise ValueError(f"model={model!r}: no such file or directory; give a GGUF file or a "
                         "Hugging Face model directory (or None for the default model)")
    a = _core.EngineArgs()
    a.model = _core.resolve_model(model or "", load_format)
    a.load_format = load_format
    a.device = "" if device in (None, "auto") else device
    a.max_model_len = max_model_len or 0
    a.gpu_memory_utilization = float(gpu_memory_utilization)
    a.max_num_seqs = max_num_seqs or 0  # 0: by device (engine_args.h)
    a.max_num_batched_tokens = max_num_batched_tokens or 0
    a.block_size = block_size
    a.enable_prefix_caching = enable_prefix_caching
    a.enforce_eager = enforce_eager
    a.kv_cache_memory = kv_cache_memory or 0
    a.threads = threads or 0
    return a


def group_spec(tp, pp, ips, dist_init_addr, cluster_token, dist_timeout) -> GroupSpec:
    need(positive_int(tp), "tensor_parallel_size", tp, "it must be a positive integer")
    need(positive_int(pp), "pipeline_parallel_size", pp, "it must be a positive integer")
    need(isinstance(dist_timeout, (int, float)) and dist_timeout > 0, "dist_timeout",
         dist_timeout, "it must be a positive number of seconds")
    nodes = parse_ips(ips)
    if nodes and (tp * pp) % len(nodes) != 0:
        raise ValueError(f"tensor_parallel_size={tp} x pipeline_parallel_size={pp} ranks do not "
                         f"split evenly over the {len(nodes)} nodes of ips: give a total that "
                         "the number of nodes divides")
    return GroupSpec(tp, pp, nodes, dist_init_addr or "", cluster_token or "",
                     float(dist_timeout))


def rank_argv(a) -> List[str]:
    """The `shardlm serve` flags that give a rank process the same model and sizes as `a`."""
    argv = ["--model", a.model, "--load-format", a.load_format,
            "--block-size", str(a.block_size), "--max-model-len", str(a.max_model_len),
            "--gpu-memory-utilization", str(a.gpu_memory_utilization),
            "--threads", str(a.threads)]
    if a.device:
        argv += ["--device", a.device]
    if a.max_num_seqs:
        argv += ["--max-num-seqs", str(a.max_num_seqs)]
    if a.max_num_batched_tokens:
        argv += ["--max-num-batched-tokens", str(a.max_num_batched_tokens)]
    if a.kv_cache_memory:
        argv += ["--kv-cache-memory", f"{a.kv_cache_memory}B"]
    if a.enforce_eager:
        argv.append("--enforce-eager")
    if not a.enable_prefix_caching:
        argv.append("--no-prefix-caching")
    return argv


def normalize_prompts(prompts) -> List[Any]:
    if isinstance(prompts, (str, dict)):
        return [prompts]
    if isinstance(prompts, (list, tuple)) and prompts and all(isinstance(t, int) for t in prompts):
        return [list(prompts)]  # one prompt of token ids
    if isinstance(prompts, (list, tuple)):
        return list(prompts)
    raise ValueError(f"prompts: expected a string, a list of strings or token-id lists, got "
                     f"{type(prompts).__name__}")


GENERATION_CONFIG_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def generation_config_defaults(mode: str, model: Optional[str]) -> Dict[str, Any]:
    """The sampling fields of the generation_config.json `mode` names ('auto': beside the model,
    when it is a directory; 'vllm': none; else a directory's), checked by SamplingParams."""
    if mode == "vllm":
        return {}
    if mode == "auto":
        if not model or not os.path.isdir(model):
            return {}
        path = os.path.join(model, "generation_config.json")
        if not os.path.exists(path):
            return {}
    else:
        path = os.path.join(mode, "generation_config.json")
        if not os.path.exists(path):
            raise ValueError(f"generation_config={mode!r}: no generation_config.json there; use "
                             "'auto', 'vllm' or a directory that holds one")
    import json
    with open(path) as f:
        config = json.load(f)
    out = {k: config[k] for k in GENERATION_CONFIG_FIELDS
           if isinstance(config, dict) and config.get(k) is not None}
    try:
        SamplingParams(**out)
    except ValueError as e:
        raise ValueError(f"{path}: {e}; fix the file, or pass generation_config='vllm'") from None
    return out


class SeedSequence:
    """LLM(seed=N): the k-th prompt without a seed gets one mixed from N and k."""

    def __init__(self, seed: Optional[int]):
        self.seed, self.issued = seed, 0

    def seeded(self, p: SamplingParams) -> SamplingParams:
        if self.seed is None or p.seed is not None:
            return p
        k, self.issued = self.issued, self.issued + 1
        return dataclasses.replace(p, seed=splitmix64(self.seed ^ splitmix64(k)) >> 1)


def splitmix64(x: int) -> int:
    mask = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


def per_prompt(sampling_params, n: int) -> List[SamplingParams]:
    if sampling_params is None:
        return [SamplingParams()] * n
    if isinstance(sampling_params, SamplingParams):
        return [sampling_params] * n
    params = list(sampling_params)
    if len(params) != n or not all(isinstance(p, SamplingParams) for p in params):
        raise ValueError(f"sampling_params: give one SamplingParams or a list of {n} (one per "
                         f"prompt), not {len(params)} items")
    return params


def logprob_dict(engine, t) -> Dict[int, Logprob]:
    d = {tok: Logprob(lp, rank + 1, engine.token_text(tok)) for rank, (tok, lp) in enumerate(t.top)}
    if t.token not in d:
        d[t.token] = Logprob(t.logprob, None, engine.token_text(t.token))
    return d


def positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def need(ok: bool, name: str, value, why: str) -> None:
    if not ok:
        raise ValueError(f"LLM: {name}={value!r} is invalid: {why}")


_live = weakref.WeakSet()


def _finalizer(llm: LLM) -> None:
    _live.add(llm)


@atexit.register
def _shutdown_all() -> None:
    # The master ends its group, the other nodes wait for it: the script's end on every node.
    for llm in list(_live):
        try:
            llm.shutdown()
        except Exception as e:  # noqa: BLE001 - at exit, report and go on
            print(f"shardlm: shutdown at exit: {e}", file=sys.stderr)
