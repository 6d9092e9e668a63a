"""The `shardlm` console command: runs the shardlm binary installed with the package, so
`shardlm serve ...`, `shardlm generate ...` and the rest behave exactly as the binary does."""
from __future__ import annotations

import os
import sys

from ._paths import binary


def main() -> None:
    path = binary()
    if not os.access(path, os.X_OK):
        sys.exit(f"error: the shardlm binary is missing at {path}; reinstall the package "
                 "(pip install .) or set SHARDLM_BINARY to a built binary")
    os.execv(path, [path, *sys.argv[1:]])


if __name__ == "__main__":
    main()
