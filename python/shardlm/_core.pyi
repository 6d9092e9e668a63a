"""Type stubs of shardlm._core, the C++ engine behind the shardlm package (use the package's
LLM, SamplingParams and Tokenizer rather than this module)."""
from typing import Callable, Dict, List, Optional, Tuple

class ShardlmError(RuntimeError): ...

def build_id() -> str: ...
def resolve_model(model: str, load_format: str) -> str: ...

class EngineArgs:
    model: str
    load_format: str
    threads: int
    block_size: int
    num_kv_blocks: int
    kv_cache_memory: int
    gpu_memory_utilization: float
    enforce_eager: bool
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    enable_prefix_caching: bool
    device: str
    def __init__(self) -> None: ...

class CoreSamplingParams:
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repetition_penalty: float
    presence_penalty: float
    frequency_penalty: float
    seed: Optional[int]
    max_tokens: int
    ignore_eos: bool
    stop_token_ids: List[int]
    stop: List[str]
    include_stop_str_in_output: bool
    skip_special_tokens: bool
    logprobs: Optional[int]
    def __init__(self) -> None: ...
    def validate(self) -> None: ...

class LaunchFlags:
    tp: Optional[int]
    pp: Optional[int]
    nnodes: Optional[int]
    node_rank: Optional[int]
    nproc_per_node: Optional[int]
    ips: List[str]
    dist_init_addr: str
    dist_timeout: float
    step_timeout: float
    cluster_token: str
    dist_backend: str
    def __init__(self) -> None: ...

class LaunchInfo:
    world_size: int
    rank: int
    local_rank: int
    local_world_size: int
    node_rank: int
    nnodes: int
    master_host: str
    master_port: int
    mode: str

class LaunchPlace:
    info: LaunchInfo
    flags: LaunchFlags

def resolve_place(flags: LaunchFlags, env: Dict[str, str]) -> LaunchPlace: ...

class TokenLogprobs:
    token: int
    logprob: float
    top: List[Tuple[int, float]]

class BatchOutput:
    prompt_token_ids: List[int]
    token_ids: List[int]
    text: str
    finish_reason: str
    logprobs: List[TokenLogprobs]

class OfflineEngine:
    @staticmethod
    def create(args: EngineArgs, group: Optional[LaunchPlace]) -> "OfflineEngine": ...
    def generate(self, prompts: List[List[int]], params: List[CoreSamplingParams],
                 progress: Optional[Callable[[int], object]]) -> List[BatchOutput]: ...
    def encode(self, text: str, add_special: bool) -> List[int]: ...
    def decode(self, ids: List[int], skip_special: bool) -> str: ...
    def apply_chat_template(self, messages_json: str, add_generation_prompt: bool,
                            extra_json: str) -> str: ...
    def token_text(self, id: int) -> str: ...
    def vocab_size(self) -> int: ...
    def max_model_len(self) -> int: ...
    def eos_token_id(self) -> Optional[int]: ...
