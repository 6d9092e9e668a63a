"""The model's tokenizer and chat template, as LLM.get_tokenizer() returns them."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Union

Message = Dict[str, Any]


class Tokenizer:
    """Text <-> token ids with the model's own tokenizer (the one the engine uses)."""

    def __init__(self, engine) -> None:
        self._engine = engine

    @property
    def vocab_size(self) -> int:
        return self._engine.vocab_size()

    @property
    def eos_token_id(self) -> Optional[int]:
        return self._engine.eos_token_id()

    def encode(self, text: str, add_special_tokens: bool = True) -> List[int]:
        """Token ids of `text`; add_special_tokens adds BOS as the model expects."""
        if not isinstance(text, str):
            raise ValueError(f"encode: text must be a str, not {type(text).__name__}")
        return self._engine.encode(text, add_special_tokens)

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """The text of `token_ids` (ValueError for an id outside the vocabulary)."""
        return self._engine.decode([int(t) for t in token_ids], skip_special_tokens)

    def convert_ids_to_tokens(self, token_ids: Sequence[int]) -> List[str]:
        return [self._engine.token_text(int(t)) for t in token_ids]

    def apply_chat_template(self, conversation: List[Message], tokenize: bool = False,
                            add_generation_prompt: bool = True,
                            **template_kwargs: Any) -> Union[str, List[int]]:
        """Renders `conversation` ([{"role": ..., "content": ...}, ...]) with the model's chat
        template (ChatML when it ships none); tokenize=True returns token ids instead (the
        template writes BOS itself, so none is added). Extra keyword arguments become template
        variables (e.g. enable_thinking=False)."""
        check_conversation(conversation)
        text = self._engine.apply_chat_template(json.dumps(conversation), add_generation_prompt,
                                                json.dumps(template_kwargs))
        return self._engine.encode(text, False) if tokenize else text

    def __call__(self, text: str, add_special_tokens: bool = True) -> Dict[str, List[int]]:
        return {"input_ids": self.encode(text, add_special_tokens)}


def check_conversation(conversation: Any) -> None:
    """ValueError naming the problem unless `conversation` is a list of role/content dicts."""
    if not isinstance(conversation, list) or not conversation:
        raise ValueError("messages: expected a non-empty list of {'role': ..., 'content': ...} "
                         "dicts (or a list of such lists)")
    for i, m in enumerate(conversation):
        if not isinstance(m, dict) or "role" not in m:
            raise ValueError(f"messages[{i}]: expected a dict with 'role' and 'content', "
                             f"got {m!r}")
