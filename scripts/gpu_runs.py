"""Run the rows of `lenet5 compare` in parallel on one machine with a GPU and many CPU cores.

Each job is exactly the row's own command (compare.ROWS) for one seed, with `--device cuda` for the
GPU rows and `--threads 1` so that many jobs share the CPU; LeNet-5's per-pattern rows run on the CPU
with the compiled engine. Jobs still running at the deadline are stopped (their run directories keep
their last completed pass). Then the ensemble row and the robustness study run on what finished.

    python scripts/gpu_runs.py OUT_DIR [--deadline SECONDS] [--jobs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lenet5.compare import ROWS, SIZE_ROWS, size_row  # noqa: E402

CPU_ROWS = {"lenet5-noise", "lenet5-15k", "lenet5-30k", "knn"}  # per-pattern SDLM (numba) or no training


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--deadline", type=float, default=450)
    ap.add_argument("--jobs", type=int, default=14)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows = {r.key: r for r in ROWS} | {size_row(s).key: size_row(s) for s in SIZE_ROWS}
    order = [
        "boosted-lenet4",
        "lenet5-noise",
        "modern",
        "modern-elastic",
        "modern-rotate",
        "modern2",
        "lenet5-30k",
        "lenet5-15k",
        "slides",
        "lenet4",
        "lenet1",
        "mlp-300",
        "linear",
        "knn",
    ]  # fmt: skip  (longest first)
    queue = []
    for key in order:
        row = rows[key]
        for seed in row.seeds:
            device = "cpu" if key in CPU_ROWS else "cuda"
            argv = row.command(seed, str(out), device)
            if key != "knn":
                argv += ["--threads", "1"]
            if args.data_dir:
                argv += ["--data-dir", args.data_dir]
            queue.append((f"{key}-s{seed}", argv))
    start = time.time()
    running: list[tuple[str, subprocess.Popen, float]] = []
    while queue or running:
        while queue and len(running) < args.jobs:
            name, argv = queue.pop(0)
            log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            print(f"[{time.time() - start:5.0f}s] start {name}: lenet5 {' '.join(argv)}", flush=True)
            running.append(
                (name, subprocess.Popen([sys.executable, "-m", "lenet5", *argv], stdout=log, stderr=log), time.time())
            )
        time.sleep(2)
        for item in list(running):
            name, proc, t0 = item
            if proc.poll() is not None:
                print(
                    f"[{time.time() - start:5.0f}s] done  {name}: exit {proc.returncode} in {time.time() - t0:.0f}s",
                    flush=True,
                )
                running.remove(item)
        if time.time() - start > args.deadline:
            for name, proc, _ in running:
                print(f"[{time.time() - start:5.0f}s] stop  {name} (deadline)", flush=True)
                proc.terminate()
            for _, proc, _ in running:
                proc.wait()
            print("not started: " + ", ".join(n for n, _ in queue), flush=True)
            break
    extra = []
    for row in ROWS:  # every ensemble row whose members all finished
        if row.kind == "ensemble" and all(Path(m).exists() for m in row.members(str(out))):
            extra.append(row.command(0, str(out), "cuda"))
    models = ["paper", "paper-distort"] + [
        f"{name}={out / run / 'weights.pt'}"
        for name, run in (("modern", "modern-s0"), ("noise-trained", "lenet5-noise-s0"))
        if (out / run / "weights.pt").exists()
    ]
    extra.append(["robustness", *models, "--device", "cuda", "--out", str(out / "robustness.json")])
    for argv in extra:
        if args.data_dir:
            argv += ["--data-dir", args.data_dir]
        name = Path(argv[argv.index("--out") + 1]).stem  # modern-ensemble, ..., robustness
        with open(logs / f"{name}.log", "w") as log:
            code = subprocess.call([sys.executable, "-m", "lenet5", *argv], stdout=log, stderr=subprocess.STDOUT)
        print(f"[{time.time() - start:5.0f}s] {argv[0]}: exit {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
