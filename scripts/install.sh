#!/usr/bin/env bash
# Creates ./.venv (Python 3.11) and installs lsd-jax into it.
#   bash scripts/install.sh          # the tool
#   bash scripts/install.sh --dev    # the tool + test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if ! command -v uv >/dev/null; then
  "$PY" -m pip install --quiet --user uv 2>/dev/null || "$PY" -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
UV="$(command -v uv || echo "$PY -m uv")"
[ -x .venv/bin/python ] || $UV venv --quiet --python "$PY" .venv
extras=""
[ "${1:-}" = "--dev" ] && extras="[test]"
$UV pip install --quiet --python .venv/bin/python -e ".${extras}"
