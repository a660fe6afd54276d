"""lenet5.predict.read_string: handwritten numbers made of real MNIST test digits, with gaps, touching, broken.

The strings are MNIST test digits pasted side by side (tests/photos.py: tinted paper, noise, a lighting
gradient, PNG/JPEG q60/BMP/TIFF/WebP), 60-140 pixels per MNIST height. A string of n digits is read
fully right with probability ~accuracy^n even when segmentation is perfect, so the string bounds below
follow from the network's ~97.5-99% per-digit accuracy: 0.975^4.5 ~ 0.89 for our 3-6 digit strings.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from photos import number_strip, save
from PIL import Image

from lenet5.errors import ImageError
from lenet5.imageprep import find_ink, image_to_grey
from lenet5.predict import read_string

N_STRINGS = 60

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _strings(mnist_test, folder, seed: int, overlap: int = 0, n: int = N_STRINGS):
    """n numbers of 3-6 random test digits with gaps of 2-6 MNIST pixels; with ``overlap``, one neighbouring
    pair overlaps by that many MNIST pixels (touching). Yields (path, truth, spans, touching pair index)."""
    x, y = mnist_test
    rng = np.random.default_rng(seed)
    for s in range(n):
        count = int(rng.integers(3, 7))
        idx = rng.choice(len(x), count, replace=False)
        gaps = [int(rng.integers(2, 7)) for _ in range(count - 1)]
        pair = int(rng.integers(0, count - 1))
        if overlap:
            gaps[pair] = -overlap
        image, spans = number_strip([x[i] for i in idx], gaps, rng, height=int(rng.integers(60, 140)))
        yield save(image, folder, f"n{seed}_{s:02d}", s), "".join(map(str, y[idx])), spans, pair


def _components(path) -> int:
    """How many ink components the page holds (a touching pair is one)."""
    return len(find_ink(image_to_grey(Image.open(path))).components)


def test_numbers_with_gaps_are_segmented_and_read(model, mnist_test, tmp_path):
    """Measured during development with an earlier 97.8%-accurate model: 100% of strings cut into the right
    number of digits, 97.5% of
    their digits right, 88% of strings fully right. Bounds: 95%, 95%, 75%."""
    right_length = right_strings = digits = right_digits = 0
    for path, truth, spans, _ in _strings(mnist_test, tmp_path, seed=0):
        result = read_string(model, path)
        read = result["string"]
        right_strings += read == truth
        if len(read) != len(truth):
            continue
        right_length += 1
        digits += len(truth)
        right_digits += sum(a == b for a, b in zip(read, truth, strict=True))
        width, height = Image.open(path).size
        for d, (x0, x1) in zip(result["digits"], spans, strict=True):  # each box on its own pasted digit
            bx0, by0, bx1, by1 = d["box"]
            assert x0 - 2 <= (bx0 + bx1) / 2 <= x1 + 2 and 0 <= by0 < by1 <= height and 0 <= bx0 < bx1 <= width
            assert 0.0 <= d["confidence"] <= 1.0 and len(d["penalties"]) == 10
    print(f"right length {right_length / N_STRINGS:.3f}, digits {right_digits / digits:.3f}, ", end="")
    print(f"strings {right_strings / N_STRINGS:.3f}")
    assert right_length >= 0.95 * N_STRINGS
    assert right_digits >= 0.95 * digits
    assert right_strings >= 0.75 * N_STRINGS


def test_numbers_with_a_touching_pair_are_read(model, mnist_test, tmp_path):
    """One pair per string overlaps by 1-3 MNIST pixels (5-15% of a digit's height), kept only where the pair
    really is one connected blob (about 45% of them): what is tested is the cutting. Measured with the
    an earlier 97.8%-accurate model on these 40 strings: 52.5% fully right and of the right length (gaps only: 90%);
    on other samples 56-76%. Where it fails: a quarter of touching pairs are no wider than one digit
    (1.1 heights) and are not cut, and the network reads another tenth of them as one digit with a
    small penalty; a vertical cut through crossing strokes misleads it on the rest. Without cutting no
    string would be right: the bounds (40% right, 45% of the right length) catch that."""
    n = 40
    right = right_length = 0
    touching = []
    for seed in range(300):
        for path, truth, _, _ in _strings(mnist_test, tmp_path, seed=20 + seed, overlap=1 + seed % 3, n=1):
            if _components(path) < len(truth):
                touching.append((path, truth))
        if len(touching) == n:
            break
    for path, truth in touching:
        read = read_string(model, path)["string"]
        right += read == truth
        right_length += len(read) == len(truth)
    print(f"touching pairs: {right / n:.3f} of strings right, {right_length / n:.3f} of the right length")
    assert len(touching) == n
    assert right >= 0.4 * n and right_length >= 0.45 * n


def test_broken_digits_are_read_as_one(model, mnist_test, tmp_path):
    """A digit with a band of 2 rows erased (a pen that skipped) is 2+ pieces stacked in the same columns:
    they must be merged into one character, not read as two digits."""
    x, y = mnist_test
    rng = np.random.default_rng(7)
    n = right_length = tried = 0
    for k in rng.choice(len(x), 200, replace=False):
        broken = x[k].copy()
        broken[12:14] = 0
        pieces = len(find_ink(1.0 - broken.astype(np.float32) / 255.0).components)
        if pieces < 2 or tried >= 30:
            continue
        tried += 1
        others = rng.choice(len(x), 2, replace=False)
        digits = [x[others[0]], broken, x[others[1]]]
        image, _ = number_strip(digits, [4, 4], rng, height=100)
        path = save(image, tmp_path, f"broken{k}", 0)
        read = read_string(model, path)["string"]
        n += 1
        right_length += len(read) == 3
    print(f"broken digits: {right_length}/{n} strings of the right length")
    assert n >= 20 and right_length >= 0.9 * n


def test_read_refuses_blank_and_unreadable_files_with_one_line(model, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 120), (250, 248, 240)).save(blank)
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    for path, reason in [(blank, "blank page"), (text, "not an image")]:
        with pytest.raises(ImageError) as e:
            read_string(model, path)
        assert "\n" not in str(e.value) and str(path) in str(e.value) and reason in str(e.value)


def test_cli_read_prints_the_string_digits_and_boxes(mnist_test, tmp_path):
    path, truth, _, _ = next(_strings(mnist_test, tmp_path, seed=3, n=1))
    out = run_cli("read", str(path), timeout=120, env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{path}: ") and "(confidence " in lines[0]
    read = lines[0].split(": ")[1].split(" ")[0]
    assert len(read) == len(truth) and len(lines) == 1 + len(read)
    assert all(
        line.startswith(f"  {d}  confidence ") and " box x " in line for d, line in zip(read, lines[1:], strict=True)
    )

    out = run_cli("read", str(path), "--json", timeout=120, env={"OMP_NUM_THREADS": "1"})
    result = json.loads(out.stdout)
    assert result["string"] == read and [d["digit"] for d in result["digits"]] == [int(c) for c in read]
    assert all(len(d["box"]) == 4 for d in result["digits"])

    blank = tmp_path / "blank.png"
    Image.new("L", (300, 100), 255).save(blank)
    out = run_cli("read", str(blank), timeout=120, env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 1 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "blank page" in out.stderr
