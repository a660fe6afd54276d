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


def enlarge(digit: np.ndarray, side: int, angle: float = 0.0) -> np.ndarray:
    """uint8 28x28 (ink = 255) -> float ink coverage in [0, 1] of side x side, rotated by ``angle`` degrees."""
    image = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    image = image.rotate(angle, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def on_page(ink: np.ndarray, page_hw: tuple[int, int], top_left: tuple[int, int], rng, light_ink: bool = False):
    """Compose ink coverage onto a page: (H, W, 3) float RGB in [0, 255] with noise and a lighting gradient."""
    h, w = page_hw
    coverage = np.zeros((h, w), np.float32)
    y, x = top_left
    coverage[y : y + ink.shape[0], x : x + ink.shape[1]] = np.maximum(
        coverage[y : y + ink.shape[0], x : x + ink.shape[1]], ink
    )
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32)
    pen = np.array(INKS[rng.integers(len(INKS))], np.float32)
    if light_ink:  # chalk on a blackboard, or a negative scan
        paper, pen = 255.0 - paper * 0.8, 255.0 - pen * 0.5
    rgb = paper * (1.0 - coverage[..., None]) + pen * coverage[..., None]  # (H, W, 3)
    gradient = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :, None] * rng.uniform(0, 12)  # lamp on one side
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(3, 12)  # sensor noise, grey
    return np.clip(rgb + gradient + noise, 0, 255)


def photo(digit: np.ndarray, rng, light_ink: bool = False) -> Image.Image:
    """One MNIST digit as a photo-like RGB or grey image, enlarged to 120-320 px and placed off-centre."""
    side = int(rng.integers(120, 320))
    ink = enlarge(digit, side, float(rng.uniform(-10, 10)))
    h, w = side + int(rng.integers(0, side * 2 // 3)), side + int(rng.integers(0, side * 2 // 3))
    top_left = (int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)))
    rgb = on_page(ink, (h, w), top_left, rng, light_ink).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    return image.convert("L") if rng.random() < 0.3 else image


def save(image: Image.Image, folder: Path, stem: str, index: int) -> Path:
    """Save in a format chosen by ``index`` (PNG, JPEG at quality 60, BMP, TIFF, WebP)."""
    suffix, fmt, options = FORMATS[index % len(FORMATS)]
    path = Path(folder) / f"{stem}.{suffix}"
    image.save(path, fmt, **options)
    return path


def number_strip(digits: list[np.ndarray], gaps: list[int], rng, height: int = 120) -> Image.Image:
    """MNIST digits side by side as one handwritten number: each cropped to its ink, scaled to ``height``.

    Gaps are in MNIST pixels (a digit is ~20 high); a negative gap makes neighbours overlap (touching digits).
    """
    scale = height / 28
    pieces = []
    for d in digits:
        cols = np.nonzero(d.max(0) > 0)[0]
        crop = d[:, cols[0] : cols[-1] + 1]  # rows keep MNIST's 20-box placement: baselines stay aligned
        pieces.append(enlarge_rect(crop, scale))
    gaps = [round(g * scale) for g in gaps]
    width = sum(p.shape[1] for p in pieces) + sum(gaps) + 2 * height // 2
    coverage = np.zeros((height, width), np.float32)
    x = height // 2
    for piece, gap in zip(pieces, [*gaps, 0]):
        region = coverage[:, x : x + piece.shape[1]]
        np.maximum(region, piece, out=region)
        x += piece.shape[1] + gap
    page_h = height * 2
    ink = np.pad(coverage, ((height // 2, page_h - height - height // 2), (0, 0)))
    rgb = on_page(ink, ink.shape, (0, 0), rng).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def enlarge_rect(crop: np.ndarray, scale: float) -> np.ndarray:
    """uint8 (28, w) -> float ink coverage enlarged by ``scale`` (bicubic)."""
    h, w = crop.shape
    size = (max(1, round(w * scale)), round(h * scale))
    return np.clip(np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC), np.float32) / 255.0, 0, 1)
