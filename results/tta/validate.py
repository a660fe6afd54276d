"""Choose a test-time augmentation on held-out training digits, never on the test set.

The two nets of this folder trained on the first 50,000 training digits (the modern recipe and the rotation
recipe, seeds 100 and 101); the last 10,000 are their validation set. For each candidate set of views this
prints the validation misses of each net and of the two together (penalties summed over views and nets, as
model.Ensemble does). Usage: python results/tta/validate.py [RUN_DIR ...]
"""

import itertools
import sys
from pathlib import Path

import torch

from lenet5 import load_model
from lenet5.config import TTA_VIEWS
from lenet5.data import load_mnist
from lenet5.distort import view_maps
from lenet5.model import TestTimeAugment

HERE = Path(__file__).parent


# The package's named sets (lenet5.config.TTA_VIEWS) and a few more, each (dx, dy, degrees, scale).
GRID = [(dx, dy, 0, 1) for dx, dy in itertools.product((-1, 0, 1), repeat=2) if (dx, dy) != (0, 0)]
CANDIDATES = {name: view_maps(name) for name in TTA_VIEWS} | {
    "shift 3x3": view_maps([(0, 0, 0, 1), *GRID]),
    "rotate 5": view_maps([(0, 0, 0, 1), (0, 0, -5, 1), (0, 0, 5, 1)]),
    "rotate 10": view_maps([(0, 0, 0, 1), (0, 0, -10, 1), (0, 0, 10, 1)]),
    "scale 0.93/1.07": view_maps([(0, 0, 0, 1), (0, 0, 0, 0.93), (0, 0, 0, 1.07)]),
}


@torch.no_grad()
def penalties(model, x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(N, 10) -log p summed over the views (V, 2, 3), as `lenet5 evaluate --tta` reads them."""
    tta = TestTimeAugment(model, maps).eval()
    return torch.cat([tta(x[i : i + 1000]) for i in range(0, len(x), 1000)])


def main(run_dirs: list[str]) -> None:
    torch.set_num_threads(2)
    x, y = load_mnist("train")
    x, y = x[50_000:], y[50_000:]
    models = [load_model(Path(d) / "weights.pt") for d in run_dirs]
    names = [Path(d).name for d in run_dirs]
    print(f"validation: training digits 50,000-59,999 ({len(y)}); misses per net and of the {len(models)} together")
    print(f"{'views':<22}" + "".join(f"{n:>18}" for n in names) + f"{'together':>10}")
    for label, maps in CANDIDATES.items():
        per = [penalties(m, x, maps) for m in models]
        misses = [int((p.argmin(1) != y).sum()) for p in per]
        both = int((sum(per).argmin(1) != y).sum())
        print(f"{label + f' ({len(maps)})':<22}" + "".join(f"{k:>18}" for k in misses) + f"{both:>10}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or [str(HERE / "val-modern-s100"), str(HERE / "val-rotate-s101")])
