"""Photo-like renderings of real MNIST test digits, for the image-preparation and reading tests.

A rendering enlarges the 28x28 digit to a few hundred pixels, rotates it slightly, places it off-centre
on a larger page of some paper colour, inks it in some ink colour (or light on dark), adds sensor noise
and a gentle lighting gradient, and saves it in one of the formats a user's camera or scanner produces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = [("png", "PNG", {}), ("jpg", "JPEG", {"quality": 60}), ("bmp", "BMP", {}), ("tif", "TIFF", {})]
FORMATS += [("webp", "WEBP", {"quality": 80})]
PAPERS = [(255, 255, 255), (245, 240, 225), (235, 240, 250), (250, 245, 200)]  # white, cream, bluish, yellow pad
INKS = [(20, 20, 20), (20, 30, 140), (60, 60, 70), (150, 20, 20)]  # black, blue, pencil grey, red


def enlarge(digit: np.ndarray, size: tuple[int, int], angle: float = 0.0) -> np.ndarray:
    """uint8 (h, w) digit (ink = 255) -> float ink coverage in [0, 1] of size (width, height), rotated."""
    image = Image.fromarray(digit).resize(size, Image.Resampling.BICUBIC)
    image = image.rotate(angle, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def on_page(coverage: np.ndarray, rng, light_ink: bool = False) -> Image.Image:
    """Ink (H, W) coverage in [0, 1] -> an RGB page: paper and ink colours, noise, a lighting gradient."""
    h, w = coverage.shape
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32)
    pen = np.array(INKS[rng.integers(len(INKS))], np.float32)
    if light_ink:  # chalk on a blackboard, or a negative scan
        paper, pen = 255.0 - paper * 0.8, 255.0 - pen * 0.5
    rgb = paper * (1.0 - coverage[..., None]) + pen * coverage[..., None]  # (H, W, 3)
    gradient = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :, None] * rng.uniform(0, 12)  # lamp on one side
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(3, 12)  # sensor noise
    return Image.fromarray(np.clip(rgb + gradient + noise, 0, 255).astype(np.uint8), "RGB")


def photo(digit: np.ndarray, rng, light_ink: bool = False) -> Image.Image:
    """One MNIST digit as a photo: enlarged to 120-320 px, rotated +-10 degrees, off-centre on a larger page."""
    side = int(rng.integers(120, 320))
    h, w = side + int(rng.integers(0, side * 2 // 3)), side + int(rng.integers(0, side * 2 // 3))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    coverage = np.zeros((h, w), np.float32)
    coverage[y : y + side, x : x + side] = enlarge(digit, (side, side), float(rng.uniform(-10, 10)))
    image = on_page(coverage, rng, light_ink)
    return image.convert("L") if rng.random() < 0.3 else image  # some scanners save grey


def save(image: Image.Image, folder: Path, stem: str, index: int) -> Path:
    """Save in a format chosen by ``index`` (PNG, JPEG at quality 60, BMP, TIFF, WebP)."""
    suffix, fmt, options = FORMATS[index % len(FORMATS)]
    path = Path(folder) / f"{stem}.{suffix}"
    image.save(path, fmt, **options)
    return path


def number_strip(digits: list[np.ndarray], gaps: list[float], rng, height: int = 120):
    """MNIST digits side by side as one handwritten number, on a page with margins, noise and tint.

    Each digit keeps MNIST's rows (so baselines align) and loses its empty columns; ``height`` is the
    page height of MNIST's 28 rows. Gaps are in MNIST pixels (a digit is ~20 high); a negative gap makes
    neighbours overlap (touching digits).

    Returns:
        the RGB image and each digit's column range [x0, x1) on it.
    """
    scale = height / 28
    pieces = []
    for d in digits:
        cols = np.nonzero(d.max(0) > 0)[0]
        crop = d[:, cols[0] : cols[-1] + 1]
        pieces.append(enlarge(crop, (max(1, round(crop.shape[1] * scale)), height)))
    steps = [round(g * scale) for g in gaps] + [0]
    margin = height // 2
    width = sum(p.shape[1] for p in pieces) + sum(steps) + 2 * margin
    coverage = np.zeros((2 * height, width), np.float32)
    x, spans = margin, []
    for piece, step in zip(pieces, steps, strict=True):
        region = coverage[margin : margin + height, x : x + piece.shape[1]]
        np.maximum(region, piece, out=region)  # overlapping strokes: the darker ink wins
        spans.append((x, x + piece.shape[1]))
        x += piece.shape[1] + step
    return on_page(coverage, rng), spans
