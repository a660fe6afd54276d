"""The gate of PREREGISTRATION.md, point 2: do nets trained for 60 passes help the others on held-out digits?

Four nets trained on the first 50,000 training digits (results/tta/val-modern-s100, val-rotate-s101,
results/modern2/val-modern2-s200 and this folder's val-modern2-long-s201) read the other 10,000 in the registered
views (shift-rotate-scale), with results/modern2/gate.py's check. The test set is scored only if the four
together miss fewer than the three old ones together (32 in results/modern2/gate.txt).
Usage: python results/modern2-long/gate.py
"""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD = [ROOT / "tta" / "val-modern-s100", ROOT / "tta" / "val-rotate-s101", ROOT / "modern2" / "val-modern2-s200"]
NEW = ROOT / "modern2-long" / "val-modern2-long-s201"
OLD_TOGETHER = 32  # results/modern2/gate.txt, recomputed below

if __name__ == "__main__":
    runpy.run_path(str(ROOT / "modern2" / "gate.py"))["gate"](OLD, NEW, OLD_TOGETHER, "gate.txt of results/modern2")
