#!/usr/bin/env bash
# The full reproduction behind the README's tables: the paper's recipe, 3 seeds, with and without
# distortions, two runs at a time (one per core). Run directories go to runs/ (or $1); the seeds are
# 0 1 2 unless $SEEDS says otherwise (the 10-seed study: SEEDS="$(seq 0 9)" scripts/reproduce_all.sh DIR).
# Then: python -m lenet5 report runs/paper-s* and runs/distort-s*.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs}"
seeds="${SEEDS:-0 1 2}"
mkdir -p "$out"
python=$(scripts/venv.sh fast)
"$python" -m lenet5 data
jobs=()
for seed in $seeds; do
  jobs+=("--seed $seed --run-name paper-s$seed" "--seed $seed --distort --run-name distort-s$seed")
done
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} sh -c "\"$python\" -m lenet5 train --quiet --threads 1 --out-dir \"$out\" {} > \"$out/\$(echo '{}' | sed 's/.*--run-name //').log\" 2>&1"
