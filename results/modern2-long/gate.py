"""The gate of PREREGISTRATION.md, point 2: do nets trained for 60 passes help the others on held-out digits?

Four nets trained on the first 50,000 training digits (results/tta/val-modern-s100, val-rotate-s101,
results/modern2/val-modern2-s200 and this folder's val-modern2-long-s201) read the other 10,000 in the registered
views (shift-rotate-scale). The test set is scored only if the four together miss fewer than the three old ones
together (32 in results/modern2/gate.txt). Usage: python results/modern2-long/gate.py
"""

from pathlib import Path

import torch

from lenet5 import load_model
from lenet5.compare import ALL_TTA
from lenet5.data import load_mnist
from lenet5.model import TestTimeAugment

ROOT = Path(__file__).resolve().parents[1]
OLD = [ROOT / "tta" / "val-modern-s100", ROOT / "tta" / "val-rotate-s101", ROOT / "modern2" / "val-modern2-s200"]
NEW = ROOT / "modern2-long" / "val-modern2-long-s201"
OLD_TOGETHER = 32  # results/modern2/gate.txt, recomputed below


@torch.no_grad()
def penalties(run_dir: Path, x: torch.Tensor) -> torch.Tensor:
    """(N, 10) -log p of the run's final weights, summed over the views."""
    tta = TestTimeAugment(load_model(run_dir / "weights.pt"), ALL_TTA).eval()
    return torch.cat([tta(x[i : i + 1000]) for i in range(0, len(x), 1000)])


def main() -> None:
    torch.set_num_threads(2)
    x, y = load_mnist("train")
    x, y = x[50_000:], y[50_000:]
    per = {d.name: penalties(d, x) for d in [*OLD, NEW]}

    def misses(names: list[str]) -> int:
        return int((sum(per[n] for n in names).argmin(1) != y).sum())

    print(f"validation: training digits 50,000-59,999 ({len(y)}), views {ALL_TTA}; misses")
    for name in per:
        print(f"  {name:<22} {misses([name]):>4}")
    old, all_four = misses([d.name for d in OLD]), misses(list(per))
    print(f"  {'old three together':<22} {old:>4}  (gate.txt of results/modern2: {OLD_TOGETHER})")
    print(f"  {'all four together':<22} {all_four:>4}")
    print(f"gate: {'open' if all_four < old else 'closed'} ({all_four} {'<' if all_four < old else '>='} {old})")


if __name__ == "__main__":
    main()
