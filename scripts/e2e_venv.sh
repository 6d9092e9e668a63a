#!/usr/bin/env bash
# Creates (once) the virtual environment the end-to-end tests run in, with the official openai
# client and pytest from tests/e2e/requirements.txt. Usage: scripts/e2e_venv.sh VENV_DIR
set -euo pipefail
venv="${1:?usage: e2e_venv.sh VENV_DIR}"
req="$(dirname "$0")/../tests/e2e/requirements.txt"
stamp="$venv/.requirements"
if [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  echo "e2e_venv: $venv is up to date"
  exit 0
fi
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
echo "e2e_venv: installed tests/e2e/requirements.txt into $venv"
