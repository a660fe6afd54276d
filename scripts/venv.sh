#!/usr/bin/env bash
# Create (once) and update the project's virtual environment in .venv, then print its python.
# Usage: scripts/venv.sh [EXTRAS]   e.g. scripts/venv.sh fast,dev
# torch is pinned to 2.13.0 here: on this project's CI machines that resolves to a local CPU build; on a
# machine with a GPU the same pin from PyPI is the CUDA build. pyproject.toml itself only asks torch>=2.1.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-fast}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv >&2
fi
stamp=".venv/.lenet5-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q "torch==${LENET5_TORCH_VERSION:-2.13.0}" >&2
  .venv/bin/python -m pip install -q -e ".[$extras]" >&2
  touch "$stamp"
fi
echo "$PWD/.venv/bin/python"
