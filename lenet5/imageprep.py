"""Photos and scans of handwritten digits -> the network's input, the way MNIST itself was made.

MNIST's digits were "size normalized to fit in a 20x20 pixel box while preserving their aspect ratio",
anti-aliased, then "centered in a 28x28 image by computing the center of mass of the pixels" (Sec. III-A).
:func:`prepare_image` does the same to a photo or scan of one digit:

  1. load with Pillow (PNG, JPEG, BMP, TIFF, WebP, GIF...; first frame; EXIF rotation applied), refusing
     files over :data:`MAX_PIXELS` (decompression bombs), empty, truncated or non-image files;
  2. grey: alpha composited on white, palette/CMYK/16-bit converted, luma for colour;
  3. resample so that the longer side lies in [:data:`WORK_MIN_SIDE`, :data:`WORK_MAX_SIDE`] (area
     averaging when shrinking, which also averages sensor and JPEG noise away);
  4. polarity: the paper is the median of the border ring, ink is whatever differs from it, so dark ink
     on light paper and chalk on a blackboard both work;
  5. denoise (separable 3x3 median) and threshold with Otsu's method; a page with fewer than
     :data:`MIN_INK` pixels :data:`MIN_CONTRAST` darker than the paper is blank;
  6. connected components (8-connectivity); the digit is the largest one plus the fragments of it
     nearby (a broken stroke); see :func:`dominant_components` for the rule that refuses noise;
  7. crop to the ink's bounding box, thicken strokes far thinner than MNIST's, fit the longer side to 20
     pixels (area-averaged, hence anti-aliased), and place the result in 28x28 with its centre of mass
     on MNIST's (pixel 14, 14).

The result is uint8 28x28 with ink = 255, ready for :func:`lenet5.data.to_field`. Not handled: strong
uneven lighting or shadows (the threshold is global), ruled or squared paper (lines count as ink), a
digit smaller than ~3% of the image's longer side (it may read as a blank page: crop first), several
digits in one image (see :func:`lenet5.predict.read_string`).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from .errors import ImageError

MAX_PIXELS = 40_000_000  # refuse larger images before decoding them: a 40 MP photo is ~120 MB of RGB
WORK_MIN_SIDE = 256  # smaller images are enlarged so that the 3x3 median filter is finer than a stroke
WORK_MAX_SIDE = 1024  # larger ones are shrunk: 20x20 is the target, 1024 keeps a digit on a page legible
MIN_CONTRAST = 0.1  # ink must differ from the paper by 10% of the grey range (~25 levels)...
MIN_INK = 50  # ... in at least 50 working pixels, else the page is blank
BOX = 20  # MNIST's size-normalisation box (Sec. III-A)
FIELD = 28  # MNIST's image size
MNIST_CENTRE = 14.0  # mean centre of mass of the MNIST test digits (rows and columns), measured
MNIST_THICKNESS = 2.0  # median stroke thickness of MNIST digits in 28x28 pixels (2 * area / perimeter)
THIN_STROKE = 1.2  # strokes thinner than this (MNIST's ~3rd percentile) are thickened to MNIST_THICKNESS
LARGEST_SHARE = 0.35  # the largest component holds at least 35% of the ink (MNIST: over 56%), else noise
MAX_PIECES = 4  # a digit is at most 4 pieces (MNIST's have at most 2); more comparable blobs are noise
NOISE_SHARE = 0.5  # and its pieces hold at least half of the ink (MNIST's: over 99%), else noise
MIN_DIGIT_SIDE = 10  # working pixels: a smaller blob is a speck
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


@dataclass
class Components:
    """Connected components of a binary image: component k (1-based label) is index k - 1."""

    labels: np.ndarray  # (H, W) int32, 0 = paper
    area: np.ndarray  # (K,) pixels
    x0: np.ndarray  # (K,) bounding boxes, inclusive-exclusive: columns x0 <= x < x1, rows y0 <= y < y1
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray

    def __len__(self) -> int:
        return len(self.area)


@dataclass
class InkImage:
    """A page after polarity, denoising and thresholding, at working resolution."""

    ink: np.ndarray  # (H, W) float32: 0 = paper, 1 = full ink
    components: Components  # of the thresholded ink
    scale: float  # working pixels per pixel of the original image


# ---- loading -------------------------------------------------------------------------------------
def open_image(source: str | os.PathLike | io.BufferedIOBase, name: str | None = None, max_pixels: int = MAX_PIXELS):
    """Load the first frame of an image (a path or a binary file object), EXIF rotation applied.

    The size is checked from the header, before anything is decoded.

    Raises:
        ImageError: missing, empty, truncated or not an image, or larger than ``max_pixels``; its
            ``reason`` names which.
    """
    is_path = isinstance(source, str | os.PathLike)
    name = name or (str(source) if is_path else "image")
    if is_path:
        path = Path(source)
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image", "missing")
    try:
        if is_path and Path(source).stat().st_size == 0:
            raise ImageError(f"{name}: empty file", "empty")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{name}: refused: {width}x{height} is over {max_pixels:,} pixels (decompression bomb?)",
                        "too-large",
                    )
                if width == 0 or height == 0:
                    raise ImageError(f"{name}: empty image ({width}x{height})", "empty")
                image.seek(0)  # animated GIF/WebP/APNG, multi-page TIFF: the first frame
                image.load()
                return ImageOps.exif_transpose(image)  # a copy: the file is closed on return
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file", "missing") from None
    except PermissionError:
        raise ImageError(f"{name}: cannot read (permission denied)", "missing") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image Pillow can read", "not-an-image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        message = f"{name}: refused: too many pixels (over {max_pixels:,}; decompression bomb?)"
        raise ImageError(message, "too-large") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name}: truncated or corrupt image ({_first_line(e)})", "corrupt") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def image_to_grey(image: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W) float32 grey in [0, 1], 1 = white; transparency is composited on white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
        if image.mode == "F" and grey.max() <= 1.0:
            top = 1.0
        return np.clip(grey / top, 0.0, 1.0)
    try:
        if image.mode == "P" or "A" in image.getbands() or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0  # ITU-R 601 luma for colour
    except ValueError as e:  # a mode Pillow cannot convert (LAB, HSV...)
        raise ImageError(f"cannot convert a {image.mode} image to grey ({_first_line(e)})") from None


def array_to_grey(array: np.ndarray) -> np.ndarray:
    """An in-memory drawing -> (H, W) float32 grey in [0, 1].

    Args:
        array: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA; bool, floats in [0, 1], or 0-255 values.
    """
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {a.shape}")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise ImageError(f"refused: {a.shape[1]}x{a.shape[0]} is over {MAX_PIXELS:,} pixels")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ImageError("the array holds NaN or infinite values")
    if a.min() < 0 or a.max() > 255:
        raise ImageError(f"pixel values must lie in [0, 1] or [0, 255], got [{a.min():g}, {a.max():g}]")
    if a.max() > 1.0:
        a = a / 255.0
    if a.ndim == 2:
        return a
    rgb = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)  # (H, W) luma
    if a.shape[2] == 4:
        rgb = a[..., 3] * rgb + (1.0 - a[..., 3])  # composite on white
    return rgb


# ---- from grey page to ink components ----------------------------------------------------------
def _working_scale(shape: tuple[int, int]) -> float:
    side = max(shape)
    if side > WORK_MAX_SIDE:
        return WORK_MAX_SIDE / side
    return WORK_MIN_SIDE / side if side < WORK_MIN_SIDE else 1.0


def _resize(grey: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return grey
    h, w = grey.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR  # BOX: area averaging
    return np.asarray(Image.fromarray(grey, "F").resize(size, method), dtype=np.float32)


def paper_is_dark(grey: np.ndarray) -> bool:
    """Polarity from the border ring (5% of each side): paper darker than mid-grey means light ink."""
    h, w = grey.shape
    bh, bw = max(1, h // 20), max(1, w // 20)
    ring = np.concatenate([grey[:bh].ravel(), grey[-bh:].ravel(), grey[:, :bw].ravel(), grey[:, -bw:].ravel()])
    return float(np.median(ring)) < 0.5


def _median_of_3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def median3(image: np.ndarray) -> np.ndarray:
    """Separable 3x3 median (the median of the three row-wise medians): removes specks, keeps edges.

    Pillow's exact MedianFilter sorts every window and costs ~20x more on a 1024x1024 page.
    """
    p = np.pad(image, 1, mode="edge")
    rows = _median_of_3(p[:, :-2], p[:, 1:-1], p[:, 2:])  # (H + 2, W)
    return _median_of_3(rows[:-2], rows[1:-1], rows[2:])  # (H, W)


def dilate3(mask: np.ndarray) -> np.ndarray:
    """3x3 maximum filter of a boolean image."""
    p = np.pad(mask, 1)
    rows = p[:, :-2] | p[:, 1:-1] | p[:, 2:]
    return rows[:-2] | rows[1:-1] | rows[2:]


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's (1979) threshold of values in [0, 1]: maximises the between-class variance of 256 bins."""
    hist, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    p = hist / max(1, hist.sum())
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)  # weight of the class below each cut
    m0 = np.cumsum(p * centres)
    total = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = 0.0
    return float(edges[int(np.argmax(between)) + 1])


def find_ink(grey: np.ndarray, polarity: str = "auto") -> InkImage:
    """Separate ink from paper: working size, polarity, 3x3 median, Otsu threshold, components.

    Args:
        grey: (H, W) float32 in [0, 1], 1 = white.
        polarity: 'auto' (from the border), 'dark' (dark ink on light paper) or 'light' (light on dark).

    Raises:
        ImageError: a blank page (contrast below :data:`MIN_CONTRAST`).
    """
    if polarity not in ("auto", "dark", "light"):
        raise ImageError(f"polarity must be auto, dark or light, got {polarity!r}")
    scale = _working_scale(grey.shape)
    grey = _resize(grey, scale)
    light_ink = paper_is_dark(grey) if polarity == "auto" else polarity == "light"
    ink = grey if light_ink else 1.0 - grey  # (H, W): ink high, paper low
    ink = median3(ink)
    paper = float(np.median(ink))
    top = float(np.partition(ink.ravel(), -MIN_INK)[-MIN_INK]) if ink.size > MIN_INK else float(ink.max())
    if top - paper < MIN_CONTRAST:
        raise ImageError(f"blank page: no ink (contrast {top - paper:.2f} < {MIN_CONTRAST})")
    threshold = max(otsu_threshold(ink), paper + MIN_CONTRAST / 2)
    mask = ink > threshold
    level = float(np.median(ink[mask]))  # the typical ink: full strength from here on
    soft = np.clip((ink - paper) / max(level - paper, 1e-6), 0.0, 1.0)
    return InkImage(soft.astype(np.float32), label_components(mask), scale)


def label_components(mask: np.ndarray) -> Components:
    """8-connected components of a boolean (H, W) image, by runs and union-find (no scipy needed)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)  # (H, W + 1): +1 where a run starts, -1 one past where it stops
    rows, start = np.nonzero(step == 1)
    _, stop = np.nonzero(step == -1)  # same rows, row-major order
    n = len(rows)
    stride = w + 2
    # Runs of row r + 1 touching run a of row r (8-connectivity) form a contiguous range of the run list.
    lo = np.searchsorted(rows * stride + stop, (rows + 1) * stride + start, "left")
    hi = np.searchsorted(rows * stride + start, (rows + 1) * stride + stop, "right")
    count = np.clip(hi - lo, 0, None)
    u = np.repeat(np.arange(n), count)
    v = np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    root = _union(n, u, v)
    _, comp = np.unique(root, return_inverse=True)  # (n,) component index of each run
    k = int(comp.max()) + 1 if n else 0
    length = stop - start
    labels = np.zeros(h * w, np.int32)
    first = np.repeat(rows * w + start - (np.cumsum(length) - length), length)
    labels[first + np.arange(length.sum())] = np.repeat(comp + 1, length)
    x0, y0 = np.full(k, w), np.full(k, h)
    x1, y1 = np.zeros(k, np.int64), np.zeros(k, np.int64)
    np.minimum.at(x0, comp, start)
    np.minimum.at(y0, comp, rows)
    np.maximum.at(x1, comp, stop)
    np.maximum.at(y1, comp, rows + 1)
    area = np.bincount(comp, weights=length, minlength=k).astype(np.int64)
    return Components(labels.reshape(h, w), area, x0, y0, x1, y1)


def _union(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The root (smallest member) of each of n nodes joined by edges (u, v): hook and compress."""
    parent = np.arange(n)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(pu, pv)[differ], np.minimum(pu, pv)[differ])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


# ---- one digit ----------------------------------------------------------------------------------
def dominant_components(components: Components) -> np.ndarray:
    """The 1-based labels that form the digit: the largest component and its nearby fragments.

    A fragment (a broken stroke) is a component of at least 5% of the largest's area whose bounding box
    is within a quarter of the largest's size of the largest's box. The noise rule, measured on MNIST
    digits and on noise pages: the largest component holds at least :data:`LARGEST_SHARE` of all the ink
    (MNIST: over 56%), the digit has at most :data:`MAX_PIECES` pieces (MNIST: at most 2) and they hold at
    least :data:`NOISE_SHARE` of the ink (MNIST: over 99%). Noise gives dozens of comparable blobs.

    Raises:
        ImageError: no ink, noise (the rule above), or only a speck of ink.
    """
    c = components
    if len(c) == 0:
        raise ImageError("blank page: no ink")
    big = int(np.argmax(c.area))
    reach = 0.25 * max(c.x1[big] - c.x0[big], c.y1[big] - c.y0[big])
    gap_x = np.maximum.reduce([c.x0[big] - c.x1, c.x0 - c.x1[big], np.zeros(len(c), np.int64)])
    gap_y = np.maximum.reduce([c.y0[big] - c.y1, c.y0 - c.y1[big], np.zeros(len(c), np.int64)])
    near = (c.area >= 0.05 * c.area[big]) & (np.maximum(gap_x, gap_y) <= reach)  # includes big itself
    if c.area[big] < LARGEST_SHARE * c.area.sum():
        raise ImageError(
            f"no dominant stroke: the largest connected ink holds {c.area[big] / c.area.sum():.0%} of the ink "
            f"(< {LARGEST_SHARE:.0%}); noise or texture?"
        )
    pieces = int(np.count_nonzero(near))
    if pieces > MAX_PIECES:
        raise ImageError(f"no dominant stroke: {pieces} comparable ink blobs side by side; noise or texture?")
    share = c.area[near].sum() / c.area.sum()
    if share < NOISE_SHARE:
        raise ImageError(
            f"no dominant stroke: the largest ink and its fragments hold {share:.0%} of the ink "
            f"(< {NOISE_SHARE:.0%}); noise, texture or several objects?"
        )
    x0, y0, x1, y1 = c.x0[near].min(), c.y0[near].min(), c.x1[near].max(), c.y1[near].max()
    if max(x1 - x0, y1 - y0) < MIN_DIGIT_SIDE:
        raise ImageError(f"the only ink is a speck ({x1 - x0}x{y1 - y0} pixels), not a digit")
    return np.nonzero(near)[0] + 1


def stroke_thickness(mask: np.ndarray) -> float:
    """Mean stroke thickness of a boolean image in pixels: 2 * area / perimeter (exact for long strokes)."""
    m = np.pad(mask, 1)
    perimeter = np.count_nonzero(m[1:] != m[:-1]) + np.count_nonzero(m[:, 1:] != m[:, :-1])
    return 2.0 * np.count_nonzero(m) / max(1, perimeter)


def normalise_digit(soft: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A cropped digit -> uint8 28x28 as MNIST: longer side fit to 20 (anti-aliased), centre of mass at 14, 14.

    Args:
        soft: (h, w) float ink in [0, 1], zero outside the digit, cropped to its bounding box.
        mask: (h, w) bool, the thresholded digit (for the stroke thickness).
    """
    scale = BOX / max(soft.shape)
    thickness = stroke_thickness(mask) * scale  # in 28x28 pixels
    if thickness < THIN_STROKE:  # a fine pen seen from far: thicken to MNIST's median before shrinking
        r = int(np.ceil((MNIST_THICKNESS - thickness) / (2 * scale)))
        image = Image.fromarray(np.pad(soft, r), "F").filter(ImageFilter.MaxFilter(2 * r + 1))
        soft = np.asarray(image, dtype=np.float32)
        scale = BOX / max(soft.shape)
    h, w = soft.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    small = np.clip(np.asarray(Image.fromarray(soft.astype(np.float32), "F").resize(size, method)), 0.0, 1.0)
    sh, sw = small.shape  # (<= 20, <= 20)
    total = float(small.sum())
    cy = float((small.sum(1) * np.arange(sh)).sum()) / total if total else (sh - 1) / 2
    cx = float((small.sum(0) * np.arange(sw)).sum()) / total if total else (sw - 1) / 2
    top = int(np.clip(round(MNIST_CENTRE - cy), 0, FIELD - sh))
    left = int(np.clip(round(MNIST_CENTRE - cx), 0, FIELD - sw))
    out = np.zeros((FIELD, FIELD), np.float32)
    out[top : top + sh, left : left + sw] = small
    return np.round(out * 255.0).astype(np.uint8)


def crop_digit(ink: np.ndarray, labels: np.ndarray, keep: np.ndarray, columns: tuple[int, int] | None = None):
    """The components ``keep`` of a page, optionally only columns [c0, c1), normalised to uint8 28x28.

    Args:
        ink: (H, W) soft ink of the page, 0 = paper.
        labels: (H, W) component labels of the page, 0 = paper.
        keep: the 1-based labels that make the digit.
        columns: cut the digit out of a touching neighbour: keep only the columns c0 <= x < c1.

    Raises:
        ImageError: the selection holds no ink.
    """
    c0, c1 = columns or (0, labels.shape[1])
    ink, labels = ink[:, c0:c1], labels[:, c0:c1]
    mask = np.isin(labels, keep)
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ImageError("nothing to crop: the selection holds no ink")
    fringe = dilate3(mask) & ((labels == 0) | mask)  # the anti-aliased edge, not other components' ink
    y0, x0 = max(0, ys.min() - 1), max(0, xs.min() - 1)
    y1, x1 = min(labels.shape[0], ys.max() + 2), min(labels.shape[1], xs.max() + 2)
    soft = np.where(fringe, ink, 0.0)[y0:y1, x0:x1]
    return normalise_digit(soft, mask[y0:y1, x0:x1])


def digit_from_grey(grey: np.ndarray, polarity: str = "auto") -> np.ndarray:
    """(H, W) grey page in [0, 1] holding one digit -> uint8 28x28, ink = 255."""
    page = find_ink(grey, polarity)
    return crop_digit(page.ink, page.components.labels, dominant_components(page.components))


def prepare_image(path: str | os.PathLike, polarity: str = "auto") -> np.ndarray:
    """A photo or scan of one handwritten digit -> uint8 28x28 (ink = 255), MNIST-style.

    Raises:
        ImageError: unreadable file, decompression bomb, blank page, or noise (one line, naming the file).
    """
    image = open_image(path)
    try:
        return digit_from_grey(image_to_grey(image), polarity)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


def prepare_array(array: np.ndarray, polarity: str = "auto") -> np.ndarray:
    """An in-memory drawing ((H, W) grey, RGB or RGBA; 0-1 or 0-255) -> uint8 28x28, ink = 255."""
    return digit_from_grey(array_to_grey(array), polarity)


def image_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, and the image files (by suffix) directly inside each directory, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out
