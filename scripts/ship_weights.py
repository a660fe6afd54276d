"""Copy a finished run's weights into the package as a pretrained model, with a record of how they were made.

Usage: python scripts/ship_weights.py RUN_DIR NAME      (NAME: paper or paper-distort)

Writes lenet5/weights/lenet5-NAME.pt (weights + model config + provenance) and updates
lenet5/weights/provenance.json with the command, seed, commit, test error and SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from lenet5.checkpoint import PRETRAINED, model_from_checkpoint, read_checkpoint, save_checkpoint
from lenet5.config import TrainConfig
from lenet5.data import load_mnist
from lenet5.train import evaluate

ROOT = Path(__file__).resolve().parents[1]


def command_for(config: TrainConfig) -> str:
    flags = [f"--seed {config.seed}"] + (["--distort"] if config.distort else [])
    return f"lenet5 train {' '.join(flags)}   (all other settings at their defaults; config.json has them all)"


def main() -> None:
    run_dir, name = Path(sys.argv[1]), sys.argv[2]
    if name not in PRETRAINED:
        sys.exit(f"NAME must be one of {', '.join(PRETRAINED)}")
    payload = read_checkpoint(run_dir / "weights.pt")
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    model = model_from_checkpoint(payload).eval()
    x, y = load_mnist("test")
    result = evaluate(model, x, y)
    commit = (run_dir / "commit.txt").read_text().strip() if (run_dir / "commit.txt").exists() else None
    commit = (
        commit or subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    )
    record = {
        "file": PRETRAINED[name],
        "command": command_for(config),
        "seed": config.seed,
        "commit": commit,
        "run": run_dir.name,
        "test_error": result["error_rate"],
        "misses": result["misses"],
        "date": date.today().isoformat(),
    }
    target = ROOT / "lenet5" / "weights" / PRETRAINED[name]
    save_checkpoint(target, model, provenance=record)
    record["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    index = ROOT / "lenet5" / "weights" / "provenance.json"
    records = json.loads(index.read_text()) if index.exists() else {}
    records[name] = record
    index.write_text(json.dumps(records, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
