#!/usr/bin/env bash
# The main job: train LeNet-5 the paper's way on MNIST (20 passes of per-pattern SDLM) and print the
# test error beside the paper's 0.95%. Extra arguments go to `lenet5 train` (try --help, --distort, --seed).
set -euo pipefail
cd "$(dirname "$0")"
python=$(scripts/venv.sh fast)
"$python" -m lenet5 data
exec "$python" -m lenet5 train "$@"
