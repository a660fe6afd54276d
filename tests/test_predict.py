"""lenet5.imageprep and lenet5.predict: photos of real MNIST test digits in, digits out; bad files refused.

Every accuracy here is measured on renderings of MNIST *test* digits (tests/photos.py), never on drawn
mocks. The oracle is the network itself on the clean 28x28 digits: preparing a photo must not lose much
of what the network gets right on MNIST as published.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from conftest import run_cli
from photos import photo, save
from PIL import Image, ImageFilter

from lenet5.errors import ImageError
from lenet5.imageprep import MAX_PIXELS, label_components, prepare_array, prepare_image
from lenet5.predict import confidence, penalties_of, predict_images

N_PHOTOS = 200

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digit_page(mnist_test):
    """MNIST test digit #0 (a 7) as dark ink on a white 300x260 grey page, and its label."""
    x, y = mnist_test
    big = Image.fromarray(255 - x[0]).resize((200, 200), Image.Resampling.BICUBIC)
    page = Image.new("L", (300, 260), 255)
    page.paste(big, (60, 30))
    return page, int(y[0])


def _predict(model, digits: np.ndarray) -> np.ndarray:
    return penalties_of(model, digits).argmin(1).numpy()


def test_photos_of_mnist_test_digits_are_read_nearly_as_well_as_the_clean_digits(model, mnist_test, tmp_path):
    """200 test digits as photos: 120-320 px, +-10 degrees, off-centre, tinted paper and ink, noise, a quarter
    light-on-dark, PNG/JPEG q60/BMP/TIFF/WebP. Measured during development with an earlier 97.8%-accurate
    model: 95.5% on the photos vs
    98.0% on the clean digits (the 5 extra misses are ambiguous digits after rotation; other seeds: 98.75% vs
    98.25%). Bound: at least 93%, and at most 4 points below clean: a lost quarter (wrong polarity) or
    a broken centring costs far more."""
    x, y = mnist_test
    rng = np.random.default_rng(0)
    idx = rng.choice(len(x), N_PHOTOS, replace=False)
    paths = [save(photo(x[k], rng, light_ink=i % 4 == 3), tmp_path, f"d{i:03d}", i) for i, k in enumerate(idx)]
    results = predict_images(model, paths)
    assert all("error" not in r for r in results), [r for r in results if "error" in r][:3]
    photo_acc = np.mean([r["digit"] == y[k] for r, k in zip(results, idx, strict=True)])
    clean_acc = np.mean(_predict(model, x[idx]) == y[idx])
    inverted_acc = np.mean([r["digit"] == y[k] for r, k in list(zip(results, idx, strict=True))[3::4]])
    print(f"photos {photo_acc:.3f}, light-on-dark {inverted_acc:.3f}, clean {clean_acc:.3f}")
    assert photo_acc >= 0.93 and photo_acc >= clean_acc - 0.04
    assert inverted_acc >= 0.9
    assert all(0.0 <= r["confidence"] <= 1.0 and len(r["penalties"]) == 10 for r in results)


def test_prepare_array_of_mnist_digits_reproduces_mnist_normalisation(model, mnist_test):
    """MNIST digits are already normalised (20x20 box, centre of mass at the centre of 28x28): preparing them
    again must change little, and the network must answer the same for nearly all of them."""
    x, _ = mnist_test
    digits = x[:300]
    prepared = np.stack([prepare_array(d) for d in digits])
    assert prepared.dtype == np.uint8 and prepared.shape == (300, 28, 28)
    agree = np.mean(_predict(model, prepared) == _predict(model, digits))
    mean_diff = np.abs(prepared.astype(float) - digits).mean()
    print(f"agreement {agree:.3f}, mean |difference| {mean_diff:.1f} grey levels")
    assert agree >= 0.97
    assert mean_diff < 20  # of 255; the ink covers ~19% of the pixels
    rows = np.arange(28)
    com = np.array([[(p.sum(1) * rows).sum(), (p.sum(0) * rows).sum()] / p.sum() for p in prepared.astype(float)])
    assert np.abs(com.mean(0) - 14.0).max() < 0.5  # MNIST's centre of mass


def test_prepare_array_accepts_0_255_0_1_rgb_and_rgba_drawings(digit_page):
    page, _ = digit_page
    grey = np.asarray(page)
    expected = prepare_array(grey)
    assert expected.max() == 255
    np.testing.assert_array_equal(prepare_array(grey / 255.0), expected)
    np.testing.assert_array_equal(prepare_array(np.stack([grey] * 3, -1)), expected)
    rgba = np.zeros((*grey.shape, 4), np.uint8)  # a canvas: black strokes whose alpha is the ink
    rgba[..., 3] = 255 - grey
    assert np.abs(prepare_array(rgba).astype(int) - expected).max() <= 2
    with pytest.raises(ImageError, match="shape"):
        prepare_array(np.zeros((4, 4, 2)))


def test_every_image_kind_gives_the_clean_answer(model, digit_page, tmp_path):
    """Grey, RGB, palette, CMYK, 1-bit, 16-bit, alpha on transparent, LA, WebP, animated, EXIF-rotated."""
    page, label = digit_page
    ink_alpha = Image.new("RGBA", page.size, (10, 10, 80, 255))
    transparent = Image.composite(
        ink_alpha, Image.new("RGBA", page.size, (0, 0, 0, 0)), Image.eval(page, lambda v: 255 - v)
    )
    kinds = {
        "grey.png": page,
        "rgb.jpg": page.convert("RGB"),
        "palette.gif": page.convert("P"),
        "cmyk.tif": page.convert("CMYK"),
        "bilevel.bmp": page.convert("1"),
        "sixteen.png": Image.fromarray(np.asarray(page).astype(np.uint16) * 257),
        "alpha.png": transparent,
        "la.png": page.convert("LA"),
        "rgb.webp": page.convert("RGB"),
    }
    for name, image in kinds.items():
        image.save(tmp_path / name)
    first, blank = page.convert("P"), Image.new("P", page.size, 0)
    first.save(tmp_path / "animated.gif", save_all=True, append_images=[blank], duration=100)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the viewer rotates 90 degrees clockwise
    page.rotate(90, expand=True).convert("RGB").save(tmp_path / "exif.jpg", exif=exif)
    results = predict_images(model, [tmp_path])
    assert len(results) == len(kinds) + 2
    assert {r["file"].rsplit("/", 1)[-1]: r.get("digit") for r in results} == {
        r: label for r in [*kinds, "animated.gif", "exif.jpg"]
    }


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height 8-bit grey pixels and holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def _noise(kind: str, size: tuple[int, int] = (320, 400)) -> Image.Image:
    rng = np.random.default_rng(1)
    if kind == "uniform":
        return Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8))
    if kind == "gaussian":
        return Image.fromarray(np.clip(rng.normal(128, 40, size), 0, 255).astype(np.uint8))
    if kind == "salt-and-pepper":
        return Image.fromarray(np.where(rng.random(size) < 0.2, 0, 255).astype(np.uint8))
    blurred = Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).filter(
        ImageFilter.GaussianBlur(int(kind[-1]))
    )
    a = np.asarray(blurred, float)
    return Image.fromarray(np.clip((a - a.mean()) / a.std() * 50 + 128, 0, 255).astype(np.uint8))


def _bad_file(kind: str, folder, digit_page) -> tuple:
    page, _ = digit_page
    path = folder / f"{kind}.png"
    if kind.startswith("noise"):
        _noise(kind.split("-", 1)[1]).save(path)
        return path, "no dominant stroke"
    content = {
        "not-an-image": (b"hello, this is text\n", "not an image"),
        "empty": (b"", "empty file"),
        "truncated-png": (_encoded(page, "PNG")[:-200], "truncated"),
        "truncated-jpeg": (_encoded(page, "JPEG")[: len(_encoded(page, "JPEG")) // 2], "truncated"),
        "bomb": (_png_header(100_000, 100_000), "decompression bomb"),
        "bomb-over-our-limit": (_png_header(8000, 8000), "decompression bomb"),
        "blank": (_encoded(Image.new("L", (300, 200), 247), "PNG"), "blank page"),
    }[kind]
    path.write_bytes(content[0])
    return path, content[1]


BAD = [
    "not-an-image",
    "empty",
    "truncated-png",
    "truncated-jpeg",
    "bomb",
    "bomb-over-our-limit",
    "blank",
    "noise-uniform",
    "noise-gaussian",
    "noise-salt-and-pepper",
    "noise-blur2",
    "noise-blur4",
]


@pytest.mark.parametrize("kind", BAD)
def test_bad_files_are_refused_with_one_line(kind, tmp_path, digit_page):
    path, reason = _bad_file(kind, tmp_path, digit_page)
    with pytest.raises(ImageError) as e:
        prepare_image(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message and reason in message, message


def test_the_pixel_limit_holds_below_pillows_own():
    assert MAX_PIXELS < Image.MAX_IMAGE_PIXELS  # so "bomb-over-our-limit" is refused by us, not by Pillow


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        prepare_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="directory"):
        prepare_image(tmp_path)


def test_blank_and_noise_arrays_are_refused():
    with pytest.raises(ImageError, match="blank"):
        prepare_array(np.full((64, 64), 0.97))
    with pytest.raises(ImageError, match="no dominant stroke"):
        prepare_array(np.asarray(_noise("uniform")))


def test_predict_images_reports_every_file_in_order(model, mnist_test, tmp_path, digit_page):
    x, y = mnist_test
    rng = np.random.default_rng(3)
    good = [save(photo(x[k], rng), tmp_path, f"good{k}", k) for k in (1, 2)]
    bad, _ = _bad_file("truncated-png", tmp_path, digit_page)
    results = predict_images(model, [good[0], bad, good[1]])
    assert [r["file"] for r in results] == [str(good[0]), str(bad), str(good[1])]
    assert set(results[1]) == {"file", "error"} and "truncated" in results[1]["error"]
    assert [results[0]["digit"], results[2]["digit"]] == [int(y[1]), int(y[2])]


def test_reject_answers_none_exactly_when_the_smallest_penalty_exceeds_the_threshold(model, mnist_test, tmp_path):
    x, _ = mnist_test
    rng = np.random.default_rng(4)
    paths = [save(photo(x[k], rng), tmp_path, f"d{k}", k) for k in range(10, 20)]
    plain = predict_images(model, paths)
    threshold = float(np.median([min(r["penalties"]) for r in plain]))
    for r, p in zip(predict_images(model, paths, reject=threshold), plain, strict=True):
        assert r["penalties"] == p["penalties"]
        assert r["digit"] == (None if min(p["penalties"]) > threshold else p["digit"])


def test_confidence_matches_its_definition_on_a_plain_loop(model, mnist_test):
    x, _ = mnist_test
    penalties = penalties_of(model, x[:50])
    for p, c in zip(penalties.tolist(), confidence(penalties).tolist(), strict=True):
        p1, p2 = sorted(p)[:2]
        assert c == pytest.approx((p2 - p1) / (p2 + p1), rel=1e-5)
    assert confidence(torch.tensor([[0.0, 5.0] + [9.0] * 8, [3.0, 3.0] + [9.0] * 8])).tolist() == [1.0, 0.0]


def test_label_components_matches_a_flood_fill(mnist_test):
    """The run-based labelling against a plain 8-connected flood fill, on thresholded MNIST digits."""
    x, _ = mnist_test
    for digit in x[:40]:
        mask = digit > 100
        got = label_components(mask)
        ref, n = _flood_fill(mask)
        assert len(got) == n and ((got.labels > 0) == mask).all()
        assert len(set(zip(ref[mask].tolist(), got.labels[mask].tolist(), strict=True))) == n  # the same partition
        for k in range(n):
            ys, xs = np.nonzero(got.labels == k + 1)
            assert (got.area[k], got.x0[k], got.y0[k]) == (len(ys), xs.min(), ys.min())
            assert (got.x1[k], got.y1[k]) == (xs.max() + 1, ys.max() + 1)


def _flood_fill(mask: np.ndarray) -> tuple[np.ndarray, int]:
    labels, n = np.zeros(mask.shape, int), 0
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        n += 1
        stack = [start]
        labels[start] = n
        while stack:
            y, x = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    q = (y + dy, x + dx)
                    if 0 <= q[0] < mask.shape[0] and 0 <= q[1] < mask.shape[1] and mask[q] and not labels[q]:
                        labels[q] = n
                        stack.append(q)
    return labels, n


def test_cli_predict_reports_good_files_and_one_line_per_bad_file(mnist_test, tmp_path, digit_page):
    x, y = mnist_test
    rng = np.random.default_rng(5)
    folder = tmp_path / "photos"
    folder.mkdir()
    good = [save(photo(x[k], rng), folder, f"good{k}", k) for k in (0, 1, 2)]
    bad = [_bad_file(kind, folder, digit_page)[0] for kind in ("not-an-image", "bomb", "blank")]
    (folder / "notes.txt").write_text("not an image suffix: skipped")
    out = run_cli("predict", str(folder), timeout=120, env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and "Traceback" not in out.stderr
    for line, path, k in zip(lines, good, (0, 1, 2), strict=True):  # good0.png < good1.jpg < good2.bmp: sorted already
        assert re.fullmatch(rf"{re.escape(str(path))}: {y[k]} \(confidence [01]\.\d\d\)", line), line
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("lenet5 predict: error: ") for e in errors)
    assert all(any(str(b) in e for e in errors) for b in bad)

    out = run_cli(
        "predict", *map(str, good), "--json", "--pretrained", "paper", timeout=120, env={"OMP_NUM_THREADS": "1"}
    )
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["digit"] for r in records] == [int(y[k]) for k in (0, 1, 2)]
    assert all(set(r) == {"file", "digit", "confidence", "penalties"} for r in records)


def test_cli_predict_without_images_is_one_line(tmp_path):
    out = run_cli("predict", str(tmp_path), timeout=120)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "no image files" in out.stderr


def test_cli_predict_engines_agree_and_a_missing_device_is_one_line(mnist_test, tmp_path):
    """--engine numba (the compiled engine) and --engine torch (the modules) read the same digits with the same
    confidences to 2 digits; --device cuda on a machine without one is refused in one line."""
    x, y = mnist_test
    rng = np.random.default_rng(6)
    files = [str(save(photo(x[k], rng), tmp_path, f"d{k}", k)) for k in range(6)]
    answers = {}
    for engine in ("numba", "torch"):
        out = run_cli("predict", *files, "--json", "--engine", engine, timeout=120, env={"OMP_NUM_THREADS": "1"})
        assert out.returncode == 0, out.stderr
        answers[engine] = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["digit"] for r in answers["numba"]] == [r["digit"] for r in answers["torch"]] == [int(d) for d in y[:6]]
    for a, b in zip(answers["numba"], answers["torch"], strict=True):
        assert np.allclose(a["penalties"], b["penalties"], rtol=1e-5, atol=2e-4)
    if not torch.cuda.is_available():
        out = run_cli("predict", files[0], "--device", "cuda", timeout=120)
        assert out.returncode == 1 and out.stdout == ""
        assert out.stderr.count("\n") == 1 and "no CUDA device" in out.stderr
