"""Where the shardlm binary and the default model are."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def binary() -> str:
    """The shardlm binary this package runs: SHARDLM_BINARY, else the one installed with it."""
    env = os.environ.get("SHARDLM_BINARY")
    if env:
        return env
    path = Path(__file__).resolve().parent / "bin" / "shardlm"
    if not path.exists():  # build/python/shardlm links its files to the sources: look beside
        path = Path(__file__).parent / "bin" / "shardlm"
    return str(path)
