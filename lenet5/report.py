"""``lenet5 report``: markdown tables from run directories, beside the paper's numbers (Fig. 5, Sec. III-C)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .config import PAPER_TEST_ERROR, PAPER_TRAIN_ERROR_PASS19
from .errors import Lenet5Error


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-pass metrics of a run directory (its metrics.jsonl), each line checked."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise Lenet5Error(f"{run_dir}: no such run directory")
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise Lenet5Error(f"{run_dir}: no metrics.jsonl (not a run directory, or no pass has completed yet)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise Lenet5Error(f"{path}: line {number} is not JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("epoch"), int) or row.get("test_error") is None:
            raise Lenet5Error(f"{path}: line {number} has no epoch and test_error")
        rows.append(row)
    if not rows:
        raise Lenet5Error(f"{path}: empty (no pass has completed yet)")
    return rows


def read_run(run_dir: str | Path) -> dict:
    """A run's config (config.json) and per-pass metrics."""
    metrics = read_metrics(run_dir)
    path = Path(run_dir) / "config.json"
    try:
        config = json.loads(path.read_text()) if path.exists() else {}  # a bare metrics.jsonl is enough
    except (OSError, ValueError) as e:
        raise Lenet5Error(f"{run_dir}: no readable config.json ({e})") from None
    if not isinstance(config, dict):
        raise Lenet5Error(f"{run_dir}: config.json does not hold a config")
    return {"dir": str(run_dir), "config": config, "metrics": metrics}


def _mean_sd(values: list[float], fmt: str = ".2f") -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.mean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def summarize(runs: list[dict]) -> dict:
    """Final test error (mean, sd, per run), training error at pass 19, time and speed."""
    finals = [r["metrics"][-1]["test_error"] for r in runs]
    at19 = [
        m["train_error"] for r in runs for m in r["metrics"] if m["epoch"] == 19 and m.get("train_error") is not None
    ]
    seconds = [sum(m["seconds"] for m in r["metrics"]) for r in runs]
    speed = [statistics.mean(m["patterns_per_second"] for m in r["metrics"]) for r in runs]
    return {
        "runs": len(runs),
        "passes": [len(r["metrics"]) for r in runs],
        "test_error": finals,
        "test_error_mean": statistics.mean(finals),
        "test_error_sd": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        "train_error_pass19": at19,
        "seconds": seconds,
        "patterns_per_second": speed,
    }


def markdown(run_dirs: list[str | Path], title: str | None = None) -> str:
    """A per-pass table (mean over runs) and a summary line against the paper."""
    runs = [read_run(d) for d in run_dirs]
    distort = runs[0]["config"].get("distort", False)
    paper = PAPER_TEST_ERROR["lenet5-distort" if distort else "lenet5"]
    s = summarize(runs)
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| pass | eta | training error (%) | test error (%) |", "|---:|---:|---:|---:|"]
    n_pass = min(len(r["metrics"]) for r in runs)
    for i in range(n_pass):
        rows = [r["metrics"][i] for r in runs]
        train = [m["train_error"] for m in rows if m.get("train_error") is not None]
        lines.append(
            f"| {i + 1} | {rows[0]['eta']:.0e} | {_mean_sd(train) if train else '-'} | "
            f"{_mean_sd([m['test_error'] for m in rows])} |"
        )
    lines.append("")
    per_run = ", ".join(f"{e:.2f}" for e in s["test_error"])
    lines.append(
        f"Final test error over {s['runs']} run(s): **{s['test_error_mean']:.2f}% ± {s['test_error_sd']:.2f}** "
        f"(runs: {per_run}); paper: {paper}%."
    )
    if s["train_error_pass19"] and not distort:
        lines.append(
            f"Training error after pass 19: {_mean_sd(s['train_error_pass19'])}%; paper: {PAPER_TRAIN_ERROR_PASS19}%."
        )
    lines.append(
        f"Wall time per run: {_mean_sd([t / 60 for t in s['seconds']], '.1f')} min (training + per-pass evaluation); "
        f"training speed {_mean_sd(s['patterns_per_second'], ',.0f')} patterns/s."
    )
    return "\n".join(lines) + "\n"
