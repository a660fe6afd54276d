"""`lenet5 bench` runs end to end and reports every row (speeds are measured there, never asserted here)."""

from __future__ import annotations

import json

from conftest import run_cli

ROWS = ("per-pattern SDLM", "mini-batch training", "batch inference", "one image", "peak memory")


def test_bench_quick_reports_every_row_as_json_and_markdown():
    result = run_cli("bench", "--quick", "--seconds", "0.2", "--repeats", "1", "--json", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert {"cpu", "cores", "torch", "numba", "date"} <= set(info["machine"])
    names = [r["row"] for r in info["rows"]]
    for row in ROWS:
        assert any(n.startswith(row) for n in names), row
    for r in info["rows"]:
        assert r["ours"] > 0 and isinstance(r["met"], bool)
        if r["baseline"] is not None:
            assert r["baseline"] > 0 and abs(r["ratio"] - (r["ours"] / r["baseline"] if "(ms)" not in r["row"]
                                                           else r["baseline"] / r["ours"])) < 1e-9  # fmt: skip
    assert sum(n.startswith("batch inference") for n in names) == 2  # eager PyTorch and ONNX Runtime


def test_bench_refuses_a_bad_data_dir_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("bench", "--quick", "--data-dir", str(blocker))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
