"""The gate of PREREGISTRATION.md, point 2: do nets trained for 60 passes, alone, beat the 30-pass ones?

Six nets trained on the first 50,000 training digits read the other 10,000 in the registered views
(shift-rotate-scale), with results/modern2/gate.py's check: the three trained for 60 passes
(results/modern2-long/val-modern2-long-s201 and this folder's s202, s203) together must miss fewer than the three
trained for 30 (results/tta/val-modern-s100, val-rotate-s101, results/modern2/val-modern2-s200; 32 in
results/modern2/gate.txt). Usage: python results/long-ensemble/gate.py
"""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD = [ROOT / "tta" / "val-modern-s100", ROOT / "tta" / "val-rotate-s101", ROOT / "modern2" / "val-modern2-s200"]
NEW = [ROOT / "modern2-long" / "val-modern2-long-s201"] + [
    ROOT / "long-ensemble" / f"val-modern2-long-s{s}" for s in (202, 203)
]
OLD_TOGETHER = 32  # results/modern2/gate.txt, recomputed below

if __name__ == "__main__":
    gate = runpy.run_path(str(ROOT / "modern2" / "gate.py"))["gate"]
    gate(OLD, NEW, OLD_TOGETHER, "gate.txt of results/modern2", alone=True)
