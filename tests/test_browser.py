"""The web demo in a real browser (Debian's chromium through Playwright), against the real `lenet5 serve`.

Digits are drawn stroke by stroke with the mouse (pointer events, as a person draws): real MNIST test digits
traced row by row, and freehand shapes (a vertical stroke, an ellipse). Photos are real MNIST test digits
rendered as camera photos (tests/photos.py) and chosen with the upload button. The oracle for a photo is
``lenet5 predict`` on the same file.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from photos import photo, save

from lenet5.predict import predict_images

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402  (after the skip: needs the browser)

pytestmark = pytest.mark.browser
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync"]
UNITS = 280  # the drawing canvas's own units (lenet5/web/app.js: SIZE)
WAIT_MS = 15_000  # for an answer: the machine is shared with training jobs
N_MAPS = 1 + 6 + 6 + 16 + 16  # input, C1, S2, C3, S4


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    expected = "the server responded with a status of 422"  # the browser logs every 4xx; 422 = "no ink" is fine
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and expected not in m.text else None)
    page.goto(url + "/")
    yield page
    context.close()
    assert not errors, errors  # no script errors, no refused resources (CSP), no failed requests


# ---- drawing -------------------------------------------------------------------------------------
class Pen:
    """Draws on the page's canvas with the mouse, in the canvas's own 280x280 units."""

    def __init__(self, page):
        self.page = page
        box = page.locator("#pad").bounding_box()
        self.x, self.y, self.scale = box["x"], box["y"], box["width"] / UNITS

    def at(self, u: float, v: float) -> tuple[float, float]:
        return self.x + u * self.scale, self.y + v * self.scale

    def stroke(self, points: list[tuple[float, float]]) -> None:
        mouse = self.page.mouse
        mouse.move(*self.at(*points[0]))
        mouse.down()
        for p in points[1:]:
            mouse.move(*self.at(*p), steps=2)
        mouse.up()


def mnist_strokes(digit: np.ndarray) -> list[list[tuple[float, float]]]:
    """A 28x28 MNIST digit as pen strokes: each horizontal run of ink (> 128) of each row, in canvas units."""
    cell = UNITS / 28
    strokes = []
    for r, row in enumerate(digit > 128):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))  # run starts, stops
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            v = (r + 0.5) * cell
            strokes.append([((start + 0.5) * cell, v), ((stop - 0.5) * cell, v)])
    return strokes


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> list[tuple[float, float]]:
    return [(cx + rx * math.sin(2 * math.pi * k / n), cy - ry * math.cos(2 * math.pi * k / n)) for k in range(n + 1)]


def wait_for_answer(page) -> None:
    """Until no answer is pending or in flight (the page debounces while drawing)."""
    page.wait_for_timeout(50)
    # A selector, not wait_for_function: that evaluates a string, which the page's CSP (rightly) forbids.
    page.wait_for_selector("body:not([data-pending]):not([data-busy])", state="attached", timeout=WAIT_MS)


def shown_digit(page) -> str:
    return page.locator("#digit").inner_text().strip()


# ---- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [0, 1, 2, 3])  # the first MNIST test digits: 7, 2, 1, 0
def test_draw_an_mnist_digit_stroke_by_stroke(page, mnist_test, index):
    x, y = mnist_test
    pen = Pen(page)
    for s in mnist_strokes(x[index]):
        pen.stroke(s)
    wait_for_answer(page)
    expect(page.locator("#digit")).to_have_text(str(y[index]), timeout=WAIT_MS)
    expect(page.locator("#status")).to_contain_text(f"Prediction {y[index]}")


def test_draw_freehand_one_then_clear_then_zero(page):
    pen = Pen(page)
    pen.stroke([(140, 40), (138, 120), (136, 240)])
    wait_for_answer(page)
    expect(page.locator("#digit")).to_have_text("1", timeout=WAIT_MS)

    page.locator("#clear").click()
    expect(page.locator("#digit")).to_have_text("\u2013")
    assert page.evaluate("document.querySelectorAll('canvas[data-drawn]').length") == 0
    assert page.evaluate("document.querySelectorAll('.bar-row[data-penalty]').length") == 0

    pen.stroke(ellipse(140, 140, 65, 100))
    wait_for_answer(page)
    expect(page.locator("#digit")).to_have_text("0", timeout=WAIT_MS)


def test_feature_maps_and_penalty_bars_are_rendered(page, mnist_test):
    x, y = mnist_test
    pen = Pen(page)
    for s in mnist_strokes(x[0]):
        pen.stroke(s)
    wait_for_answer(page)
    expect(page.locator("#digit")).to_have_text(str(y[0]), timeout=WAIT_MS)
    # the maps of the last answer are painted after its digit is shown: wait for all of them
    expect(page.locator("#maps canvas[data-drawn='1']")).to_have_count(N_MAPS, timeout=WAIT_MS)
    page.wait_for_timeout(300)  # let any answer still in flight land before reading the pixels

    maps = page.evaluate(
        """() => [...document.querySelectorAll('#maps canvas')].map((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lo = 255, hi = 0, opaque = 0;
            for (let i = 0; i < d.length; i += 4) {
              lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); opaque += d[i + 3] === 255;
            }
            return {id: c.parentElement.id, side: c.width, drawn: c.dataset.drawn === '1', lo, hi,
                    full: opaque === c.width * c.height};
          })"""
    )
    assert len(maps) == N_MAPS
    sides = {m["id"]: m["side"] for m in maps}
    assert sides == {"maps-input": 32, "maps-c1": 28, "maps-s2": 14, "maps-c3": 10, "maps-s4": 5}
    assert all(m["drawn"] and m["full"] for m in maps)  # every map painted, every pixel
    assert sum(m["hi"] - m["lo"] > 30 for m in maps) >= N_MAPS - 4  # maps show structure, not a flat grey
    assert maps[0]["lo"] < 40 and maps[0]["hi"] == 255  # the input: dark ink on white background

    bars = page.evaluate(
        """() => [...document.querySelectorAll('.bar-row')].map((r) => ({
            digit: r.dataset.digit, penalty: parseFloat(r.dataset.penalty), best: r.classList.contains('best'),
            width: r.querySelector('.bar').getBoundingClientRect().width}))"""
    )
    assert [b["digit"] for b in bars] == [str(d) for d in range(10)]
    best = min(bars, key=lambda b: b["penalty"])
    assert best["digit"] == str(y[0]) and [b["digit"] for b in bars if b["best"]] == [best["digit"]]
    assert all(b["width"] > 0 for b in bars)
    by_penalty = sorted(bars, key=lambda b: b["penalty"])
    widths = [b["width"] for b in by_penalty]
    assert all(w2 >= w1 - 0.5 for w1, w2 in itertools.pairwise(widths))  # bar length grows with the penalty
    assert widths[-1] > widths[0]


@pytest.mark.parametrize("index", [4, 6, 7])  # a 4 as WebP, a 4 as JPEG, a 9 as BMP
def test_upload_a_photo(page, mnist_test, tmp_path, index):
    from lenet5.checkpoint import load_model

    x, y = mnist_test
    path = save(photo(x[index], np.random.default_rng(index)), tmp_path, f"digit{index}", index)
    want = predict_images(load_model("paper"), [path])[0]["digit"]
    assert want == y[index]  # the oracle itself reads this photo right

    page.set_input_files("#file", str(path))
    wait_for_answer(page)
    expect(page.locator("#digit")).to_have_text(str(want), timeout=WAIT_MS)
    assert page.evaluate("document.querySelectorAll('canvas[data-drawn]').length") == N_MAPS
    preview = page.evaluate(
        "(() => { const d = document.getElementById('pad').getContext('2d').getImageData(0, 0, 280, 280).data;"
        " let dark = 0; for (let i = 0; i < d.length; i += 4) dark += d[i] < 128; return dark; })()"
    )
    assert preview > 100  # the photo is shown on the pad


def test_blank_photo_says_no_ink(page, tmp_path):
    from PIL import Image

    path = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (250, 248, 240)).save(path)
    page.set_input_files("#file", str(path))
    wait_for_answer(page)
    expect(page.locator("#status")).to_contain_text("no ink", timeout=WAIT_MS)
    expect(page.locator("#status")).to_have_class("status error")
    expect(page.locator("#digit")).to_have_text("\u2013")


def test_phone_layout(browser, url):
    """A phone-sized screen: nothing wider than the screen, the pad fills the width, drawing works, by finger too."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(url + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#pad").bounding_box()
    assert box["width"] > 300 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("getComputedStyle(document.getElementById('pad')).touchAction") == "none"
    Pen(page).stroke([(140, 40), (140, 240)])
    wait_for_answer(page)
    expect(page.locator("#status")).to_contain_text("Prediction 1", timeout=WAIT_MS)  # visible under the pad

    # With a finger: real touch events from the browser's input pipeline, which become touch pointer events.
    page.locator("#clear").click()
    page.evaluate(
        "window.seen = [];document.getElementById('pad').addEventListener('pointerdown', e => seen.push(e.pointerType))"
    )
    pen, cdp = Pen(page), context.new_cdp_session(page)
    ring = ellipse(140, 140, 65, 100)
    for kind, (u, v) in [("touchStart", ring[0])] + [("touchMove", p) for p in ring[1:]] + [("touchEnd", ring[-1])]:
        x, y = pen.at(u, v)
        cdp.send(
            "Input.dispatchTouchEvent", {"type": kind, "touchPoints": [] if kind == "touchEnd" else [{"x": x, "y": y}]}
        )
    wait_for_answer(page)
    expect(page.locator("#digit")).to_have_text("0", timeout=WAIT_MS)
    assert page.evaluate("window.seen") == ["touch"]
    context.close()
