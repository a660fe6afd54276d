"""The gate of PREREGISTRATION.md, point 3: does a net of the second design help the old ones on held-out digits?

Three nets trained on the first 50,000 training digits (results/tta/val-modern-s100, results/tta/val-rotate-s101
and this folder's val-modern2-s200) read the other 10,000 in the registered views (shift-rotate-scale). The
test set is scored only if the three together miss fewer than the two old ones together (35 in
results/tta/validate.txt). Usage: python results/modern2/gate.py
"""

from pathlib import Path

import torch

from lenet5 import load_model
from lenet5.compare import ALL_TTA
from lenet5.data import load_mnist
from lenet5.model import TestTimeAugment

ROOT = Path(__file__).resolve().parents[1]
OLD = [ROOT / "tta" / "val-modern-s100", ROOT / "tta" / "val-rotate-s101"]
NEW = ROOT / "modern2" / "val-modern2-s200"
VIEWS = ALL_TTA  # shift-rotate-scale, the views the registration fixed
OLD_TOGETHER = 35  # results/tta/validate.txt, recomputed below


@torch.no_grad()
def penalties(run_dir: Path, x: torch.Tensor) -> torch.Tensor:
    """(N, 10) -log p of the run's final weights, summed over the views."""
    tta = TestTimeAugment(load_model(run_dir / "weights.pt"), VIEWS).eval()
    return torch.cat([tta(x[i : i + 1000]) for i in range(0, len(x), 1000)])


WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def gate(old: list[Path], new: Path | list[Path], old_together: int, recorded_in: str, *, alone: bool = False) -> None:
    """Print each net's misses, the old nets' together and all together, and whether the gate opens: whether all
    together (``alone``: the new nets together) miss fewer than the old ones together."""
    new = [new] if isinstance(new, Path) else new
    torch.set_num_threads(2)
    x, y = load_mnist("train")
    x, y = x[50_000:], y[50_000:]
    per = {d.name: penalties(d, x) for d in [*old, *new]}

    def misses(names: list[str]) -> int:
        return int((sum(per[n] for n in names).argmin(1) != y).sum())

    width = max(20, max(map(len, per)) + 1)
    print(f"validation: training digits 50,000-59,999 ({len(y)}), views {VIEWS}; misses")
    for name in per:
        print(f"  {name:<{width}} {misses([name]):>4}")
    before, together = misses([d.name for d in old]), misses(list(per))
    after = misses([d.name for d in new]) if alone else together
    print(f"  {f'old {WORDS[len(old)]} together':<{width}} {before:>4}  ({recorded_in}: {old_together})")
    if alone:
        print(f"  {f'new {WORDS[len(new)]} together':<{width}} {after:>4}")
    print(f"  {f'all {WORDS[len(per)]} together':<{width}} {together:>4}" + ("  (decides nothing)" if alone else ""))
    print(f"gate: {'open' if after < before else 'closed'} ({after} {'<' if after < before else '>='} {before})")


def main() -> None:
    gate(OLD, NEW, OLD_TOGETHER, "validate.txt")


if __name__ == "__main__":
    main()
