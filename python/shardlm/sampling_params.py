"""SamplingParams: per-request sampling settings with vLLM's argument names and meanings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Union

from . import _core

MAX_LOGPROBS = 20


@dataclass
class SamplingParams:
    """How to sample one prompt's output (vLLM's names and defaults).

    Args:
        n: outputs per prompt (only 1 is supported).
        temperature: 0 samples greedily; higher is more random.
        top_p: nucleus sampling mass in (0, 1].
        top_k: keep the k most likely tokens; 0 or -1 turns it off.
        min_p: drop tokens below min_p times the most likely token's probability.
        presence_penalty, frequency_penalty: OpenAI's penalties on tokens already in the output.
        repetition_penalty: above 1 discourages tokens seen in the prompt or the output.
        seed: the same seed gives the same output.
        max_tokens: tokens to generate at most.
        stop: text (or texts) that ends the output; left out of it unless
            include_stop_str_in_output.
        stop_token_ids: token ids that end the output.
        ignore_eos: keep generating after the end-of-sequence token.
        logprobs: report each output token's log-probability and this many alternatives (0-20).
        skip_special_tokens: leave special tokens out of the output text.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    seed: Optional[int] = None
    max_tokens: Optional[int] = 16
    stop: Optional[Union[str, List[str]]] = None
    stop_token_ids: Optional[List[int]] = None
    ignore_eos: bool = False
    logprobs: Optional[int] = None
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    _core_params: Optional[object] = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        self._core_params = self._to_core()

    def _check(self) -> None:
        _need(self.n == 1, "n", self.n, "only n=1 is supported; repeat the prompt for more outputs")
        _need(self.temperature >= 0, "temperature", self.temperature, "it must be >= 0")
        _need(0 < self.top_p <= 1, "top_p", self.top_p, "it must be in (0, 1]")
        _need(isinstance(self.top_k, int) and self.top_k >= -1, "top_k", self.top_k,
              "it must be -1, 0 (off) or a positive integer")
        _need(0 <= self.min_p <= 1, "min_p", self.min_p, "it must be in [0, 1]")
        _need(self.repetition_penalty > 0, "repetition_penalty", self.repetition_penalty,
              "it must be > 0")
        _need(-2 <= self.presence_penalty <= 2, "presence_penalty", self.presence_penalty,
              "it must be in [-2, 2]")
        _need(-2 <= self.frequency_penalty <= 2, "frequency_penalty", self.frequency_penalty,
              "it must be in [-2, 2]")
        _need(self.max_tokens is None or (isinstance(self.max_tokens, int) and self.max_tokens >= 1),
              "max_tokens", self.max_tokens, "it must be an integer >= 1 (or None: up to the context)")
        _need(self.seed is None or (isinstance(self.seed, int) and self.seed >= 0), "seed",
              self.seed, "it must be a non-negative integer")
        _need(self.logprobs is None or (isinstance(self.logprobs, int)
                                        and 0 <= self.logprobs <= MAX_LOGPROBS),
              "logprobs", self.logprobs, f"it must be an integer in [0, {MAX_LOGPROBS}]")

    def _to_core(self):
        p = _core.CoreSamplingParams()
        p.temperature = float(self.temperature)
        p.top_p = float(self.top_p)
        p.top_k = max(int(self.top_k), 0)
        p.min_p = float(self.min_p)
        p.presence_penalty = float(self.presence_penalty)
        p.frequency_penalty = float(self.frequency_penalty)
        p.repetition_penalty = float(self.repetition_penalty)
        p.seed = self.seed
        p.max_tokens = self.max_tokens if self.max_tokens is not None else 1 << 20
        p.stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        p.stop_token_ids = list(self.stop_token_ids or [])
        p.ignore_eos = bool(self.ignore_eos)
        p.logprobs = self.logprobs
        p.include_stop_str_in_output = bool(self.include_stop_str_in_output)
        p.skip_special_tokens = bool(self.skip_special_tokens)
        try:
            p.validate()
        except _core.ShardlmError as e:
            raise ValueError(f"SamplingParams: {e}") from None
        return p

    def _for_prompt_len(self, prompt_len: int, max_model_len: int):
        """The engine's settings; max_tokens=None becomes what fits in the context."""
        if self.max_tokens is not None:
            return self._core_params
        p = self._to_core()
        p.max_tokens = max(max_model_len - prompt_len, 1)
        return p


def _need(ok: bool, name: str, value, why: str) -> None:
    if not ok:
        raise ValueError(f"SamplingParams: {name}={value!r} is invalid: {why}")
