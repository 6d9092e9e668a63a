"""shardlm: LLM inference across GPUs and machines, from Python.

The offline API follows vLLM and FastDeploy:

    from shardlm import LLM, SamplingParams
    llm = LLM(model="model.gguf", tensor_parallel_size=1)
    outputs = llm.generate(["Hello"], SamplingParams(temperature=0.8, top_p=0.95))
    print(outputs[0].outputs[0].text)

See docs/python.md. The `shardlm` command runs the same CLI as the shardlm binary.
"""
from ._core import ShardlmError, build_id
from .llm import LLM
from .outputs import CompletionOutput, Logprob, RequestOutput
from .sampling_params import SamplingParams
from .tokenizer import Tokenizer

__version__ = build_id().split(" ")[0] if build_id() else "0.1.0"
__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput", "Logprob", "Tokenizer",
           "ShardlmError", "build_id"]
