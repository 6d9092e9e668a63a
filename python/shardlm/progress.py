"""The batch progress bar: tqdm's (as vLLM shows it) when tqdm is installed, else a plain line on
stderr when it is a terminal."""
from __future__ import annotations

import contextlib
import sys


class _PlainBar:
    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def update(self, n: int) -> None:
        self.done += n
        width = 30
        filled = width * self.done // max(self.total, 1)
        sys.stderr.write(f"\rProcessed prompts [{'#' * filled}{' ' * (width - filled)}] "
                         f"{self.done}/{self.total}")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool):
    """Yields an object with update(n) (or None when disabled)."""
    if not enabled or total == 0:
        yield None
        return
    try:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="Processed prompts", dynamic_ncols=True)
    except ImportError:
        bar = _PlainBar(total) if sys.stderr.isatty() else None
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()
