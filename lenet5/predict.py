"""Use the network on real documents: classify photos of single digits, read handwritten numbers.

:func:`predict_images` prepares each file as MNIST was made (:mod:`lenet5.imageprep`) and answers the
digit whose RBF prototype is nearest (Sec. II-B: the smallest penalty).

Confidence. A number in [0, 1] from the two smallest penalties p1 <= p2 (squared distances to the two
nearest prototypes): ``(p2 - p1) / (p2 + p1)``. It is 1 when the input sits on its prototype, 0 when two
prototypes are equally near, and it needs no fitted temperature (a softmax of -penalties saturates at 1
because penalties differ by tens). On the MNIST test set it ranks right above wrong answers better than a
softmax does (area under the ROC curve 0.979 vs 0.769 with the shipped 'paper' weights, all 10,000 test digits).

Rejection. ``reject=T`` answers "not a digit" (digit None) when the smallest penalty exceeds T: the input is
far from every prototype. The shipped weights give penalties under 1 for most MNIST test digits, above
10 for most of their mistakes.

:func:`read_string` reads a number written on one line (zip code, amount) in the spirit of the paper's
heuristic over-segmentation (Sec. V): cut candidates are generated, the recognizer scores them, and the
cheapest path through them wins.

  1. The ink is thresholded as for a single digit and split into 8-connected components; specks under
     3% of the largest component's area are dropped.
  2. Broken digits: components whose column ranges overlap by at least half of the narrower one's width
     are one character (the detached bar of a 5, a 4 written in two strokes).
  3. Marks shorter than a third of the median character height are dropped (dots, commas, dashes,
     underlines).
  4. Touching digits: a character wider than 1.1 median heights may hold several digits. Columns where
     its ink is thinnest (local minima of the vertical projection) are cut candidates; every piece between
     two candidates (at most 1.3 heights wide) is classified, and the segmentation with the smallest sum
     of (best penalty + :data:`SPLIT_COST`) over its pieces wins (dynamic programming over the cuts). Not
     cutting is one of the options. Cuts are straight vertical lines: bent cuts along the path of least
     ink were tried and read fewer touching pairs correctly.

Measured during development on numbers of 3-6 MNIST test digits pasted on photo-like pages
(tests/test_read.py), with an earlier 97.8%-accurate model (the tests assert their bounds with the shipped
weights): with gaps, 100% cut into the right number of digits and 90% read fully right (the network alone
gets 97.8% of those digits); with one truly touching pair, 52-76% fully right depending on the sample.

It can read: digits with gaps between them, digits broken into pieces stacked in the same columns,
pairs or runs of digits that touch where a vertical cut separates them. It cannot read: several lines,
text slanted so much that neighbours overlap in x without touching (they merge as one broken digit),
touching digits that overlap so deeply that no vertical cut separates them, touching narrow pairs such
as "11" whose whole width is under 1.1 heights, letters and punctuation (dropped or read as digits).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import to_field
from .errors import ImageError
from .imageprep import crop_digit, find_ink, image_files, image_to_grey, open_image, prepare_image

BATCH = 256  # inputs per forward pass
SPECK = 0.03  # components under 3% of the largest's area are dropped by read_string
SHORT_MARK = 1 / 3  # characters shorter than this share of the median height are punctuation
MAYBE_SEVERAL = 1.1  # characters wider than 1.1 heights may be touching digits (MNIST: 9% of digits are)
MAX_PIECE = 1.3  # a piece of a cut character is at most 1.3 heights wide (MNIST: 98% of digits are narrower)
SPLIT_COST = 1.0  # added to each piece's penalty: a cut must make the penalties smaller by more than this
MAX_CUTS = 8  # cut candidates per character: the thinnest columns
MAX_CHARACTERS = 40  # more characters than this is not a number


def confidence(penalties: torch.Tensor) -> torch.Tensor:
    """(N, 10) penalties -> (N,) confidence (p2 - p1) / (p2 + p1) of the two smallest penalties."""
    two = penalties.topk(2, dim=1, largest=False).values  # (N, 2)
    gap, total = two[:, 1] - two[:, 0], two[:, 1] + two[:, 0]
    return torch.where(total > 0, gap / total.clamp_min(1e-12), torch.zeros_like(total))


@torch.no_grad()
def penalties_of(model: torch.nn.Module, digits: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) digits -> (N, 10) float penalties, in batches of :data:`BATCH`."""
    device = next(model.parameters()).device
    out = [model(to_field(digits[i : i + BATCH]).to(device)).cpu() for i in range(0, len(digits), BATCH)]
    return torch.cat(out) if out else torch.zeros(0, 10)


def _answer(penalties: torch.Tensor, conf: float, reject: float | None) -> dict:
    best = float(penalties.min())
    digit = None if reject is not None and best > reject else int(penalties.argmin())
    return {"digit": digit, "confidence": round(conf, 4), "penalties": [round(float(p), 4) for p in penalties]}


def predict_images(
    model: torch.nn.Module, paths: list[str | os.PathLike], reject: float | None = None, polarity: str = "auto"
) -> list[dict]:
    """Classify photos or scans of single digits; directories stand for the image files directly inside them.

    Args:
        model: a LeNet5 in eval mode.
        paths: image files and directories.
        reject: answer digit None when the smallest penalty exceeds this.
        polarity: 'auto', 'dark' (dark ink on light paper) or 'light'.

    Returns:
        One dict per file, in order: ``file``, ``digit`` (int, None when rejected), ``confidence``,
        ``penalties`` (10 floats); a file that cannot be used gets ``file`` and ``error`` (one line).
    """
    files = image_files(paths)
    results: list[dict] = []
    digits, slots = [], []
    for path in files:
        try:
            digits.append(prepare_image(path, polarity))
            slots.append(len(results))
            results.append({"file": str(path)})
        except ImageError as e:
            results.append({"file": str(path), "error": str(e).removeprefix(f"{path}: ")})
    if digits:
        penalties = penalties_of(model, np.stack(digits))
        for slot, pen, conf in zip(slots, penalties, confidence(penalties).tolist(), strict=True):
            results[slot].update(_answer(pen, conf, reject))
    return results


# ---- reading a number --------------------------------------------------------------------------
def _characters(page) -> list[np.ndarray]:
    """Groups of component labels, one per character, left to right (steps 1-3 of the module doc)."""
    c = page.components
    if len(c) == 0:
        raise ImageError("blank page: no ink")
    big = c.area.max()
    order = [k for k in np.argsort(c.x0, kind="stable") if c.area[k] >= SPECK * big]
    groups: list[list[int]] = []
    spans: list[list[int]] = []  # [x0, x1) of each group
    for k in order:
        x0, x1 = int(c.x0[k]), int(c.x1[k])
        if spans:
            g0, g1 = spans[-1]
            overlap = min(g1, x1) - max(g0, x0)
            if overlap >= 0.5 * min(g1 - g0, x1 - x0):
                groups[-1].append(k)
                spans[-1] = [min(g0, x0), max(g1, x1)]
                continue
        groups.append([k])
        spans.append([x0, x1])
    heights = np.array([c.y1[g].max() - c.y0[g].min() for g in groups])
    tall = heights >= SHORT_MARK * np.median(heights)
    out = [np.array(g) + 1 for g, keep in zip(groups, tall, strict=True) if keep]
    if len(out) > MAX_CHARACTERS:
        raise ImageError(f"{len(out)} separate marks: more than {MAX_CHARACTERS} characters; noise or not a number?")
    return out


def _cut_columns(mask: np.ndarray, height: int) -> list[int]:
    """Columns of a character's mask where touching digits may be cut: the thinnest local minima of ink."""
    smooth = np.convolve(mask.sum(0), np.ones(3) / 3, mode="same")  # (w,) vertical projection
    margin = max(2, int(0.15 * height))  # no piece narrower than a thin "1"
    minima = [
        x
        for x in range(margin, len(smooth) - margin)
        if smooth[x] <= smooth[x - 1] and smooth[x] <= smooth[x + 1] and smooth[x] < smooth.max()
    ]
    chosen: list[int] = []
    for x in sorted(minima, key=lambda x: smooth[x]):  # thinnest first, at least a thin "1" apart
        if len(chosen) < MAX_CUTS and all(abs(x - y) >= margin for y in chosen):
            chosen.append(x)
    return sorted(chosen)


@dataclass
class Character:
    """One character of a number (perhaps several touching digits) and its candidate digits."""

    labels: np.ndarray  # its 1-based component labels
    rows: slice  # its bounding box on the page, with one pixel of fringe around
    cols: slice
    cuts: list[int]  # cut columns within the box: the left edge, the candidates, the right edge
    spans: list[tuple[int, int]]  # (i, j): the piece between cut i and cut j is a candidate digit
    digits: np.ndarray  # uint8 (S, 28, 28): each span's piece, normalised as MNIST


def _character(page, labels: np.ndarray, height: int) -> Character:
    """A character, its cut candidates and the pieces between them (step 4 of the module doc)."""
    c = page.components
    x0, x1 = int(c.x0[labels - 1].min()), int(c.x1[labels - 1].max())
    y0, y1 = int(c.y0[labels - 1].min()), int(c.y1[labels - 1].max())
    rows, cols = slice(max(0, y0 - 1), y1 + 1), slice(max(0, x0 - 1), x1 + 1)
    ink, lab = page.ink[rows, cols], c.labels[rows, cols]  # (h, w)
    wide = x1 - x0 > MAYBE_SEVERAL * height
    cuts = [0, *(_cut_columns(np.isin(lab, labels), height) if wide else []), lab.shape[1]]
    last = len(cuts) - 1
    spans = [(i, j) for i in range(last) for j in range(i + 1, last + 1)]
    spans = [(i, j) for i, j in spans if (i, j) == (0, last) or cuts[j] - cuts[i] <= MAX_PIECE * height]
    kept, digits = [], []
    for i, j in spans:
        try:
            digits.append(crop_digit(ink, lab, labels, (cuts[i], cuts[j])))
            kept.append((i, j))
        except ImageError:  # a piece of a broken digit that holds no ink between these cuts
            continue
    return Character(labels, rows, cols, cuts, kept, np.stack(digits))


def _cheapest_path(n_nodes: int, spans: list[tuple[int, int]], cost: list[float]) -> list[int]:
    """Indices of the spans on the path from node 0 to the last node with the smallest total cost."""
    best: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}  # node -> (cost, span indices so far)
    for j in range(1, n_nodes):
        options = [(best[i][0] + cost[s], best[i][1] + [s]) for s, (i, jj) in enumerate(spans) if jj == j and i in best]
        if options:
            best[j] = min(options, key=lambda o: o[0])
    return best[n_nodes - 1][1]


def read_string(model: torch.nn.Module, path: str | os.PathLike, polarity: str = "auto") -> dict:
    """Read a handwritten number written on one line (see the module docstring for what it can segment).

    Returns:
        ``file``, ``string`` (the digits read, left to right), ``confidence`` (the smallest of the digits'),
        and ``digits``: per digit ``digit``, ``confidence``, ``box`` (x0, y0, x1, y1 in the image's pixels,
        x1/y1 exclusive) and ``penalties``.

    Raises:
        ImageError: unreadable file, blank page, or far too many marks (one line, naming the file).
    """
    image = open_image(path)
    try:
        page = find_ink(image_to_grey(image), polarity)
        groups = _characters(page)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None
    c = page.components
    height = int(np.median([c.y1[g - 1].max() - c.y0[g - 1].min() for g in groups]))
    chars = [_character(page, labels, height) for labels in groups]
    penalties = penalties_of(model, np.concatenate([ch.digits for ch in chars]))  # one forward pass
    digits, start = [], 0
    for ch in chars:
        pen = penalties[start : start + len(ch.spans)]  # (S, 10)
        start += len(ch.spans)
        for s in _cheapest_path(len(ch.cuts), ch.spans, (pen.min(1).values + SPLIT_COST).tolist()):
            digits.append(_read_digit(page, ch, ch.spans[s], pen[s]))
    return {
        "file": str(Path(path)),
        "string": "".join(str(d["digit"]) for d in digits),
        "confidence": min((d["confidence"] for d in digits), default=0.0),
        "digits": digits,
    }


def _read_digit(page, char: Character, span: tuple[int, int], penalties: torch.Tensor) -> dict:
    c0, c1 = char.cuts[span[0]], char.cuts[span[1]]
    ys, xs = np.nonzero(np.isin(page.components.labels[char.rows, char.cols][:, c0:c1], char.labels))
    left, top = char.cols.start + c0, char.rows.start
    box = np.array([left + xs.min(), top + ys.min(), left + xs.max() + 1, top + ys.max() + 1]) / page.scale
    conf = float(confidence(penalties[None])[0])
    return {**_answer(penalties, conf, None), "box": [int(v) for v in np.round(box)]}  # in the image's pixels
