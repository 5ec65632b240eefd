#!/usr/bin/env bash
# Creates ./.venv (Python 3.11) and installs lsd-jax into it.
#   bash scripts/install.sh          # the tool
#   bash scripts/install.sh --dev    # the tool + test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if ! command -v uv >/dev/null; then
  if "$PY" -m pip install --quiet --user uv 2>/dev/null; then
    echo "install.sh: installed uv into $HOME/.local/bin (add it to your PATH to use uv yourself)"
  else
    "$PY" -m pip install --quiet uv
    echo "install.sh: installed uv with $PY -m pip"
  fi
  export PATH="$HOME/.local/bin:$PATH"
fi
UV="$(command -v uv || echo "$PY -m uv")"
[ -x .venv/bin/python ] || $UV venv --quiet --python "$PY" .venv
extras=""
[ "${1:-}" = "--dev" ] && extras="[test]"
$UV pip install --quiet --python .venv/bin/python -e ".${extras}"
echo "install.sh: done. lsd-jax is in .venv/bin: run .venv/bin/lsd-jax, or 'source .venv/bin/activate' and then lsd-jax"
