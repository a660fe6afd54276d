"""The paper's figures redrawn from our runs and weights, as PNG files (matplotlib's Agg backend).

    learning_curves  Fig. 5: training and test error per pass, for one or several run directories
    misclassified    Fig. 8: the misclassified test digits, each labelled true->predicted
    confusion        the 10x10 confusion matrix of a test set, with the error of each class
    rbf_bitmaps      Fig. 3: the ten 7x12 bitmaps that are the fixed weights of the RBF output units
    feature_maps     the state of every layer of Fig. 2 (C1 ... F6, penalties) for one input
    distortions      Fig. 7: training digits and the distorted copies that ``--distort`` trains on

A leaf: nothing in the core imports this module. matplotlib is optional (pip install 'lenet5[plot]')
and is imported inside the functions; we draw on a ``Figure`` with an Agg canvas rather than through
pyplot, so no global backend is switched and no figure outlives its call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .config import PAPER_TEST_ERROR, PAPER_TRAIN_ERROR_PASS19, PIXEL_BACKGROUND, PIXEL_FOREGROUND, SQUASH_A
from .errors import Lenet5Error
from .fileio import atomic_path
from .layers import BITMAP_HEIGHT, BITMAP_WIDTH, rbf_prototypes
from .model import LeNet5

DPI = 100
GAP = "#c9d3e0"  # colour of the gaps between tiled maps, distinct from both ends of the grey scale


# ---- helpers --------------------------------------------------------------------------------------
def _png_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise Lenet5Error(f"{out}: the output must be a .png file")
    return out


def _figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas, or a one-line error if matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise Lenet5Error("matplotlib is not installed: pip install 'lenet5[plot]'") from None
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out: Path) -> Path:
    with atomic_path(out) as tmp:  # the temporary name ends in .tmp, so name the format
        fig.savefig(tmp, format="png", dpi=DPI)
    return out


def _grey(bad: str = GAP):
    """Ink-dark grey scale (high values black, as the paper prints digits); NaN (the gaps) in ``bad``."""
    import matplotlib

    return matplotlib.colormaps["gray_r"].with_extremes(bad=bad)


def _tile(maps: np.ndarray, cols: int, pad: int = 1, top: int = 0) -> np.ndarray:
    """Lay out (K, H, W) maps on a grid of ``cols`` columns, NaN between them and ``top`` rows above each.

    Returns:
        (rows * (top + H + pad) - pad, cols * (W + pad) - pad) float array.
    """
    k, h, w = maps.shape
    rows = -(-k // cols)
    out = np.full((rows * (top + h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for i in range(k):
        r, c = divmod(i, cols)
        y, x = r * (top + h + pad) + top, c * (w + pad)
        out[y : y + h, x : x + w] = maps[i]
    return out


def _image_axes(ax, frame: bool = False) -> None:
    """No ticks; a thin frame only where white pixels would otherwise merge with the page."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame)
        spine.set_color("0.6")


# ---- Fig. 5: learning curves ----------------------------------------------------------------------
def learning_curves(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Training and test error (percent) against the pass, as in Fig. 5, one colour per run.

    The training error is the error on the whole training set after each pass; a run trained with
    ``--no-train-eval`` has only the running error measured during the pass, and is labelled so.
    Dashed lines mark the paper's 0.95% test error and 0.35% training error after pass 19 (0.8% test error
    when the runs trained with distortions).
    """
    out = _png_path(out)
    if not run_dirs:
        raise Lenet5Error("no run directory to plot")
    from .report import read_run

    runs = [(Path(d), read_run(d)) for d in run_dirs]  # read all first: fail before drawing anything
    distort = any(run["config"].get("distort") for _, run in runs)
    paper_test = PAPER_TEST_ERROR["lenet5-distort" if distort else "lenet5"]
    runs = [(d, run["metrics"]) for d, run in runs]
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    values = [paper_test] + ([] if distort else [PAPER_TRAIN_ERROR_PASS19])
    for i, (run_dir, rows) in enumerate(runs):
        name, colour = run_dir.resolve().name, f"C{i % 10}"
        epochs = [r["epoch"] for r in rows]
        test = [r["test_error"] for r in rows]
        ax.plot(epochs, test, "o-", color=colour, label=f"{name}: test")
        if all(r.get("train_error") is not None for r in rows):
            train, what = [r["train_error"] for r in rows], "training"
        else:
            train, what = [r.get("running_train_error") for r in rows], "training (running, during the pass)"
        if all(v is not None for v in train):
            ax.plot(epochs, train, "s:", color=colour, label=f"{name}: {what}")
            values += train
        values += test
    label = f"paper: test error {paper_test}%" + (" with distortions" if distort else "")
    ax.axhline(paper_test, ls="--", color="black", lw=1, label=label)
    if not distort:
        ax.axhline(PAPER_TRAIN_ERROR_PASS19, ls="--", color="0.55", lw=1, label="paper: training error 0.35% (pass 19)")
    if min(values) > 0 and max(values) / min(values) > 10:  # a short or early run sits far above the paper
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training set iterations (passes)")
    ax.set_ylabel("error rate (%)")
    ax.set_title("Learning curves (cf. Fig. 5)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, out)


# ---- Fig. 8 and the confusion matrix --------------------------------------------------------------
def _evaluate(model: LeNet5, x: torch.Tensor, y: torch.Tensor) -> dict:
    from .train import evaluate

    return evaluate(model, x, y)


def misclassified(
    model: LeNet5, x: torch.Tensor, y: torch.Tensor, out: str | os.PathLike, limit: int = 0, label: str = "test set"
) -> Path:
    """The digits ``model`` gets wrong, labelled true->predicted, as in Fig. 8.

    Args:
        x, y: (N, 1, 32, 32) inputs and (N,) labels, e.g. the MNIST test set.
        limit: draw only the first ``limit`` misclassified digits (0 = all of them).
        label: names the set in the title.
    """
    out = _png_path(out)
    result = _evaluate(model, x, y)
    wrong, pred = result["misclassified"], result["predictions"]
    shown = wrong[:limit] if limit else wrong
    cols = max(1, min(len(shown), 12))
    rows = max(1, -(-len(shown) // cols))
    fig = _figure(max(4.0, 0.75 * cols), 0.9 + 0.95 * rows)
    ax = fig.add_subplot()
    title = f"{result['misses']} misclassified of {result['n']} ({label}, {result['error_rate']:.2f}% error)"
    if len(shown) < len(wrong):
        title += f", first {len(shown)} shown"
    ax.set_title(title + ": true->predicted (cf. Fig. 8)")
    _image_axes(ax)
    if not shown:
        ax.text(0.5, 0.5, "no misclassified digits", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, out)
    fields = x[torch.as_tensor(shown), 0].numpy()  # (K, 32, 32)
    size, pad, top = fields.shape[1], 2, 11  # ``top`` pixel rows above each digit hold its label
    ax.imshow(_tile(fields, cols, pad, top), cmap=_grey("white"), vmin=PIXEL_BACKGROUND, vmax=PIXEL_FOREGROUND)
    for i, index in enumerate(shown):
        r, c = divmod(i, cols)
        ax.text(
            c * (size + pad) + size / 2, r * (top + size + pad) + top - 1, f"{int(y[index])}->{pred[index]}",
            ha="center", va="bottom", fontsize=9,
        )  # fmt: skip
    return _save(fig, out)


def confusion(model: LeNet5, x: torch.Tensor, y: torch.Tensor, out: str | os.PathLike, label: str = "test set") -> Path:
    """The confusion matrix (rows = true class, columns = predicted) with every count written in its cell.

    The diagonal (the correct answers, ~1000 per class) is greyed out so that the colour scale shows the errors.
    """
    out = _png_path(out)
    result = _evaluate(model, x, y)
    counts = np.array(result["confusion"])  # (10, 10)
    n_cls = len(counts)
    errors = counts.astype(float)
    errors[np.eye(n_cls, dtype=bool)] = np.nan
    fig = _figure(7.5, 6.5)
    ax = fig.add_subplot()
    import matplotlib

    cmap = matplotlib.colormaps["Reds"].with_extremes(bad="#e6e6e6")
    image = ax.imshow(errors, cmap=cmap, vmin=0, vmax=max(1, np.nanmax(errors)))
    for t in range(n_cls):
        for p in range(n_cls):
            v = counts[t, p]
            dark = t != p and v > 0.6 * np.nanmax(errors)
            ax.text(
                p, t, str(v), ha="center", va="center", fontsize=8 if t == p else 9,
                color="white" if dark else ("0.7" if v == 0 else "black"), weight="bold" if t == p else "normal",
            )  # fmt: skip
        ax.text(n_cls - 0.3, t, f"{result['per_class_error'][t]:.2f}%", ha="left", va="center", fontsize=8)
    ax.set_xticks(range(n_cls))
    ax.set_yticks(range(n_cls))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_xlim(-0.5, n_cls + 0.9)  # room on the right for the per-class error
    ax.set_title(f"Confusion matrix, {label}: {result['misses']} errors of {result['n']} ({result['error_rate']:.2f}%)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="errors")
    return _save(fig, out)


# ---- Fig. 3: the RBF bitmaps ----------------------------------------------------------------------
def rbf_bitmaps(out: str | os.PathLike, prototypes: torch.Tensor | None = None) -> Path:
    """The ten RBF prototypes (+1 black, -1 white), each a 7-wide, 12-high bitmap, as in Fig. 3."""
    out = _png_path(out)
    protos = (rbf_prototypes() if prototypes is None else prototypes).numpy()
    bitmaps = protos.reshape(-1, BITMAP_HEIGHT, BITMAP_WIDTH)  # (10, 12, 7), row-major
    fig = _figure(8, 2.4)
    axes = fig.subplots(1, len(bitmaps))
    for c, (ax, bits) in enumerate(zip(axes, bitmaps, strict=True)):
        ax.imshow(bits, cmap=_grey(), vmin=-1, vmax=1)
        ax.set_xlabel(str(c))
        _image_axes(ax, frame=True)
    fig.suptitle("RBF output prototypes: 7x12 bitmaps of +-1 (cf. Fig. 3; drawn by us, DEVIATION(D2))")
    return _save(fig, out)


# ---- Fig. 2: the state of every layer for one input -----------------------------------------------
@torch.no_grad()
def feature_maps(
    model: LeNet5, x: torch.Tensor, out: str | os.PathLike, label: str = "", true: int | None = None
) -> Path:
    """Every layer's output for one input: C1 ... F6 as grey maps (-1.7159 white, +1.7159 black), the penalties.

    C5's 120 units have no spatial layout and are drawn 6 x 20; F6's 84 units are drawn as a 7x12
    bitmap beside the RBF prototype they are nearest to, which is how the output layer decides.

    Args:
        x: one input, (1, 32, 32) or (1, 1, 32, 32).
        label: describes the input in the title (e.g. "MNIST test #0").
        true: the input's class, if known.
    """
    out = _png_path(out)
    x = x.reshape(1, 1, 32, 32).float()
    model.eval()
    acts = {k: v[0].cpu().numpy() for k, v in model.activations(x).items()}
    penalties = acts["penalties"]  # (10,)
    pred = int(penalties.argmin())
    fig = _figure(13, 8.5)
    grid = fig.add_gridspec(5, 2, width_ratios=[3.2, 1.3])
    grey = _grey()
    rows = [  # name, maps (K, H, W), columns of the tile
        (f"C1  6@{acts['c1'].shape[1]}x{acts['c1'].shape[2]}", acts["c1"], 6),
        (f"S2  6@{acts['s2'].shape[1]}x{acts['s2'].shape[2]}", acts["s2"], 6),
        (f"C3  16@{acts['c3'].shape[1]}x{acts['c3'].shape[2]}", acts["c3"], 8),
        (f"S4  16@{acts['s4'].shape[1]}x{acts['s4'].shape[2]}", acts["s4"], 8),
        ("C5  120 units (drawn 6x20)", acts["c5"].reshape(1, 6, 20), 1),
    ]
    for r, (name, maps, cols) in enumerate(rows):
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(_tile(maps, cols), cmap=grey, vmin=-SQUASH_A, vmax=SQUASH_A)
        ax.set_title(name, fontsize=10, loc="left")
        _image_axes(ax)

    ax = fig.add_subplot(grid[0:2, 1])
    ax.imshow(acts["input"][0], cmap=grey, vmin=PIXEL_BACKGROUND, vmax=PIXEL_FOREGROUND)
    ax.set_title("INPUT 32x32", fontsize=10, loc="left")
    _image_axes(ax, frame=True)

    pair = grid[2:4, 1].subgridspec(1, 2)
    protos = model.output.prototypes.cpu().numpy()
    for c, (name, bits) in enumerate([("F6  84 units", acts["f6"]), (f"prototype of {pred}", protos[pred])]):
        ax = fig.add_subplot(pair[0, c])
        ax.imshow(bits.reshape(BITMAP_HEIGHT, BITMAP_WIDTH), cmap=grey, vmin=-1, vmax=1)  # +-1 is the RBF target
        ax.set_title(name, fontsize=10, loc="left")
        _image_axes(ax, frame=True)

    ax = fig.add_subplot(grid[4, 1])
    colours = ["C3" if c == pred else "C0" for c in range(len(penalties))]
    ax.bar(range(len(penalties)), penalties, color=colours)
    ax.text(pred, penalties[pred], f"{penalties[pred]:.2f}", ha="center", va="bottom", fontsize=8, color="C3")
    ax.set_xticks(range(len(penalties)))
    ax.set_title("OUTPUT  10 RBF penalties (lowest wins)", fontsize=10, loc="left")

    truth = "" if true is None else f", true class {true}"
    fig.suptitle(f"Feature maps for {label or 'the input'}: predicted {pred} (penalty {penalties[pred]:.2f}){truth}")
    return _save(fig, out)


# ---- Fig. 7: distortions --------------------------------------------------------------------------
def distortions(x: torch.Tensor, y: torch.Tensor, out: str | os.PathLike, digits: int = 10, seed: int = 0) -> Path:
    """The first training digit of each class (up to ``digits`` of them) and its distorted copies, as in Fig. 7.

    The copies are exactly those that ``lenet5 train --distort --seed SEED`` draws from for these
    digits (:class:`lenet5.distort.DistortedSet` over the same ``x``).

    Args:
        x, y: the training inputs (N, 1, 32, 32) and labels (N,), as ``lenet5 train`` loads them.
    """
    from .distort import COPIES, DistortedSet

    out = _png_path(out)
    if digits < 1:
        raise Lenet5Error(f"--digits must be >= 1, got {digits}")
    firsts = [int(np.flatnonzero(y.numpy() == c)[0]) for c in torch.unique(y).tolist()][:digits]
    index = np.repeat(firsts, COPIES + 1)
    version = np.tile(np.arange(COPIES + 1), len(firsts))  # 0 = the original, 1..9 = its copies
    fields = DistortedSet(x, seed).patterns(index, version)[:, 0].numpy()  # (digits * 10, 32, 32)
    size, pad, top = fields.shape[1], 2, 8
    fig = _figure(1.0 + 0.75 * (COPIES + 1), 1.0 + 0.85 * len(firsts))
    ax = fig.add_subplot()
    ax.imshow(_tile(fields, COPIES + 1, pad, top), cmap=_grey("white"), vmin=PIXEL_BACKGROUND, vmax=PIXEL_FOREGROUND)
    for c in range(COPIES + 1):
        ax.text(c * (size + pad) + size / 2, top - 1, "original" if c == 0 else f"copy {c}", ha="center", va="bottom")
    _image_axes(ax)
    ax.set_title(f"Distortions (Sec. III-C, cf. Fig. 7): training digits and their copies with --distort --seed {seed}")
    return _save(fig, out)


def robustness_figure(result: dict, out: str | os.PathLike) -> Path:
    """Sec. III-E as curves: test error against each transform of the test digits, one line per model."""
    out = _png_path(out)
    studies = result["studies"]
    fig = _figure(4.0 * len(studies), 3.4)
    axes = fig.subplots(1, len(studies), squeeze=False)[0]
    for ax, (study, r) in zip(axes, studies.items(), strict=True):
        for name, errors in r["errors"].items():
            ax.plot(r["values"], errors, marker="o", markersize=3, label=name)
        ax.set_xlabel(r["unit"])
        ax.set_ylabel("test error (%)")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.set_title(study)
    axes[0].legend(fontsize=8)
    return _save(fig, out)


def training_curves(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """The slides' two panels for softmax runs: training accuracy and training loss per epoch."""
    import json

    out = _png_path(out)
    fig = _figure(9.0, 3.4)
    acc_ax, loss_ax = fig.subplots(1, 2)
    for run in run_dirs:
        lines = Path(run, "metrics.jsonl").read_text().splitlines()
        history = [json.loads(line) for line in lines if line.strip()]
        if not history:
            raise Lenet5Error(f"{run}: no completed pass in metrics.jsonl")
        epochs = [m["epoch"] for m in history]
        acc_ax.plot(epochs, [100 - m["running_train_error"] for m in history], marker="o", markersize=3,
                    label=f"{Path(run).name} training")  # fmt: skip
        acc_ax.plot(epochs, [100 - m["test_error"] for m in history], linestyle="--", label=f"{Path(run).name} test")
        loss_ax.plot(epochs, [m["loss"] for m in history], marker="o", markersize=3, label=Path(run).name)
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    loss_ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="loss")
    for ax in (acc_ax, loss_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out)
