#!/usr/bin/env bash
# The whole test suite, slow tests and browser tests included. Installs what the tests need:
# the package with all extras in .venv, and (Debian) chromium + the Fashion-MNIST package.
set -euo pipefail
cd "$(dirname "$0")"
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python=$(scripts/venv.sh fast,plot,export,serve,dev)
"$python" -m ruff check lenet5 tests scripts
"$python" -m ruff format --check lenet5 tests scripts
exec "$python" -m pytest "$@"
