"""What LLM.generate and LLM.chat return, shaped like vLLM's RequestOutput / CompletionOutput."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class Logprob:
    """A token's log-probability under the model, its rank among all tokens (1 = most likely,
    None when it is not among the alternatives asked for) and its text."""

    logprob: float
    rank: Optional[int] = None
    decoded_token: Optional[str] = None


@dataclass
class CompletionOutput:
    """One generated output: its text, token ids (including a final EOS or stop token), why it
    ended ("stop", "length" or "abort") and, when asked for, per-token log-probabilities (one
    {token_id: Logprob} per output token: the sampled token and the top alternatives)."""

    index: int
    text: str
    token_ids: List[int]
    cumulative_logprob: Optional[float]
    logprobs: Optional[List[Dict[int, Logprob]]]
    finish_reason: Optional[str] = None
    stop_reason: Optional[str] = None

    def finished(self) -> bool:
        return self.finish_reason is not None


class CompletionOutputs(list):
    """The outputs of one request (a list, as vLLM has it). Reading .text, .token_ids,
    .finish_reason or .logprobs gives the first output's, as FastDeploy's `output.outputs.text`."""

    def __getattr__(self, name):
        if name in ("text", "token_ids", "finish_reason", "logprobs", "cumulative_logprob", "index"):
            return getattr(self[0], name)
        raise AttributeError(name)


@dataclass
class RequestOutput:
    """One prompt's result: the prompt, its token ids and its outputs (outputs[0].text ...)."""

    request_id: str
    prompt: Optional[str]
    prompt_token_ids: List[int]
    outputs: CompletionOutputs = field(default_factory=CompletionOutputs)
    finished: bool = True
