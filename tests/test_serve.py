"""lenet5.serve: the real `lenet5 serve` over real HTTP, real MNIST test digits in, every refusal checked.

The oracle for the answers is ``lenet5 predict``'s own pipeline (prepare_image / prepare_array, then the
network): the API must give exactly the digit, confidence and penalties that it gives on the same image.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image
from serving import app_in_thread, raw_get

from lenet5.data import to_field
from lenet5.imageprep import prepare_array
from lenet5.predict import predict_images
from lenet5.serve import MAX_BODY, MAX_UPLOAD_PIXELS, create_app

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

INDICES = [0, 1, 2, 3, 4]  # the first MNIST test digits: 7, 2, 1, 0, 4


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c


def png_of(digit: np.ndarray, side: int = 200) -> bytes:
    """An MNIST digit (ink = 255) as a photo-like PNG: dark ink on white paper, enlarged, with a margin."""
    page = Image.new("L", (side + 80, side + 60), 255)
    page.paste(Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BICUBIC), (40, 30))
    out = io.BytesIO()
    page.save(out, "PNG")
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height pixels, followed by almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def assert_error(r: httpx.Response, status: int, words: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    assert isinstance(message, str) and "\n" not in message and words in message, message


# ---- what works --------------------------------------------------------------------------------
def test_health(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["model"]["name"] == "paper" and body["model"]["parameters"] == 60_000
    assert body["limits"]["max_body_bytes"] == MAX_BODY


def test_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="pad"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]  # nothing loaded from elsewhere
    for name, kind in [("app.js", "javascript"), ("style.css", "text/css")]:
        r = client.get(f"/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert "http" not in client.get("/index.html").text.split("<footer>")[0]  # no CDN


def test_upload_matches_lenet5_predict(client, mnist_test, model, tmp_path):
    x, y = mnist_test
    for i in INDICES:
        path = tmp_path / f"{i}.png"
        path.write_bytes(png_of(x[i]))
        r = client.post("/api/predict", files={"file": (path.name, path.read_bytes(), "image/png")})
        assert r.status_code == 200, r.text
        got, want = r.json(), predict_images(model, [path])[0]
        assert got["digit"] == want["digit"] == int(y[i])
        assert got["confidence"] == want["confidence"]
        assert got["penalties"] == want["penalties"]
        assert "features" not in got


def test_raw_image_body(client, mnist_test):
    x, y = mnist_test
    r = client.post("/api/predict", content=png_of(x[0]), headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.json()["digit"] == int(y[0])


def test_pixels_match_prepare_array(client, mnist_test, model):
    """MNIST's own 28x28 arrays (light ink on black, 0-255 and 0-1) and a page-like 84x84 drawing."""
    x, y = mnist_test
    drawing = np.asarray(Image.fromarray(255 - x[2]).resize((84, 84), Image.Resampling.BILINEAR))  # dark on white
    for pixels, label in [(x[0], y[0]), (x[1] / 255.0, y[1]), (drawing, y[2])]:
        r = client.post("/api/predict", json={"pixels": pixels.tolist()})
        assert r.status_code == 200, r.text
        digit = prepare_array(np.asarray(pixels))
        with torch.no_grad():
            penalties = model(to_field(digit))[0]
        got = r.json()
        assert got["digit"] == int(penalties.argmin()) == int(label)
        assert got["penalties"] == [round(float(p), 4) for p in penalties]
        assert np.allclose(got["input"], to_field(digit)[0, 0].numpy(), atol=5e-4)  # what the network saw


def test_features(client, mnist_test, model):
    x, _ = mnist_test
    r = client.post("/api/predict?features=1", json={"pixels": x[3].tolist()})
    assert r.status_code == 200
    got = r.json()
    with torch.no_grad():
        acts = model.activations(to_field(prepare_array(x[3])))
    for name, shape in [("c1", (6, 28, 28)), ("s2", (6, 14, 14)), ("c3", (16, 10, 10)), ("s4", (16, 5, 5))]:
        maps = np.array(got["features"][name])
        assert maps.shape == shape
        assert np.allclose(maps, acts[name][0].numpy(), atol=5e-4)
    assert np.array(got["input"]).shape == (32, 32)
    assert got["features_range"] == pytest.approx([-1.7159, 1.7159])


# ---- what is refused ---------------------------------------------------------------------------
def test_blank_drawing_is_no_ink(client):
    assert_error(client.post("/api/predict", json={"pixels": [[255] * 84] * 84}), 422, "no ink")
    assert_error(client.post("/api/predict", json={"pixels": [[0.0] * 28] * 28}), 422, "no ink")


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b'{"pixels": [[0, 0], [0', 400, "malformed JSON"),
        (b"\xff\xfe not utf-8", 400, "malformed JSON"),
        (b'{"image": [[0]]}', 422, "pixels"),
        (b"[[0, 1], [1, 0]]", 422, "pixels"),
        (b'{"pixels": [[0, 1], [1]]}', 422, "rectangular"),
        (b'{"pixels": [["a", "b"]]}', 422, "numbers"),
        (b'{"pixels": [[0, null]]}', 422, "numbers"),
        (b'{"pixels": []}', 422, "non-empty"),
        (b'{"pixels": [[-5, 300]]}', 422, "[0, 1] or [0, 255]"),
    ],
)
def test_bad_json(client, body, status, words):
    assert_error(client.post("/api/predict", content=body, headers={"Content-Type": "application/json"}), status, words)


def test_drawing_too_large(client):
    assert_error(client.post("/api/predict", json={"pixels": [[0] * 1025]}), 413, "1024")


def test_unsupported_content_types(client):
    assert_error(client.post("/api/predict", content=b"7", headers={"Content-Type": "text/plain"}), 415, "text/plain")
    assert_error(client.post("/api/predict", content=b"7"), 415, "content type")  # none given
    not_image = {"file": ("notes.png", b"this is not a picture", "image/png")}
    assert_error(client.post("/api/predict", files=not_image), 415, "not an image")


def test_bad_uploads(client, mnist_test):
    png = png_of(mnist_test[0][0])
    assert_error(client.post("/api/predict", files={"photo": ("a.png", png, "image/png")}), 422, "'file'")
    assert_error(client.post("/api/predict", files={"file": ("a.png", b"", "image/png")}), 400, "empty")
    truncated = {"file": ("a.png", png[: len(png) // 2], "image/png")}
    assert_error(client.post("/api/predict", files=truncated), 400, "truncated or corrupt")
    no_boundary = {"Content-Type": "multipart/form-data"}
    assert_error(client.post("/api/predict", content=b"--xyz\r\nnonsense", headers=no_boundary), 400, "multipart")
    assert_error(client.post("/api/predict?ink=purple", files={"file": ("a.png", png, "image/png")}), 422, "ink")


def test_decompression_bombs(client):
    """Too many pixels is refused from the header, before anything is decoded."""
    side = int(MAX_UPLOAD_PIXELS**0.5) + 100  # just over our limit, under Pillow's own bomb guard
    assert_error(client.post("/api/predict", files={"file": ("big.png", png_header(side, side))}), 413, "pixels")
    assert_error(client.post("/api/predict", files={"file": ("bomb.png", png_header(20_000, 20_000))}), 413, "pixels")
    real = io.BytesIO()  # a real one: 36 MP of zeros compress to a few kB
    Image.new("1", (6000, 6000)).save(real, "PNG")
    assert len(real.getvalue()) < 100_000
    assert_error(client.post("/api/predict", files={"file": ("zeros.png", real.getvalue())}), 413, "pixels")


def test_body_over_the_limit(url, client):
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:  # declared too large: refused unread
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n")
        s.sendall(f"Content-Length: {MAX_BODY + 1}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):  # until the server closes (Connection: close)
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"over the limit" in answer

    def chunks():  # no Content-Length (chunked): refused once the count passes the limit
        for _ in range(5):
            yield b"\0" * (MAX_BODY // 5)
        yield b"\0" * 16

    r = client.post("/api/predict", content=chunks(), headers={"Content-Type": "image/png"})
    assert_error(r, 413, "over the limit")


def test_clients_that_vanish_or_stall_do_not_take_the_server_down(url, client, mnist_test):
    """Clients that disconnect half-way through an upload, and clients that send a few bytes and stall,
    while a normal client keeps getting answers; afterwards the server is healthy."""
    host, port = url.removeprefix("http://").split(":")
    png = png_of(mnist_test[0][0])
    head = (
        f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {len(png)}\r\n\r\n"
    ).encode()
    for _ in range(10):  # gone mid-request
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(head + png[: len(png) // 2])
    stalled = [socket.create_connection((host, int(port)), timeout=10) for _ in range(10)]
    try:
        for s in stalled:
            s.sendall(head[:20])  # a few bytes of the request line, then nothing
        started = time.monotonic()
        r = client.post("/api/predict", files={"file": ("7.png", png, "image/png")})
        assert r.status_code == 200 and r.json()["digit"] == int(mnist_test[1][0])
        assert time.monotonic() - started < 10.0  # not held up by the stalled connections
    finally:
        for s in stalled:
            s.close()
    assert client.get("/api/health").json()["status"] == "ok"


def test_static_files_stay_inside_web(url):
    assert raw_get(url, "/app.js")[0] == 200
    for path in ["/../serve.py", "/../../pyproject.toml", "/%2e%2e/serve.py", "/..%2fserve.py", "/web/../serve.py"]:
        status, body = raw_get(url, path)
        assert status == 404, path
        assert b"import" not in body and b"[project]" not in body


def test_unknown_path_is_json_404(client):
    assert_error(client.get("/api/nothing"), 404, "not found")


# ---- concurrency -------------------------------------------------------------------------------
class Gated(torch.nn.Module):
    """The real model, held at the forward pass until released: makes "the pool is busy" deterministic."""

    def __init__(self, model):
        super().__init__()
        self.model, self.entered, self.release = model, threading.Event(), threading.Event()

    def _hold(self):
        self.entered.set()
        assert self.release.wait(20)

    def forward(self, x):
        self._hold()
        return self.model(x)

    def activations(self, x):
        self._hold()
        return self.model.activations(x)


def test_burst_gets_503_quickly(model, mnist_test):
    gated = Gated(model)
    png = png_of(mnist_test[0][0])
    files = {"file": ("7.png", png, "image/png")}
    app = create_app(gated, workers=1, max_busy=1, admit_wait_s=0.2)
    with app_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        first: dict = {}
        holder = threading.Thread(target=lambda: first.update(r=c.post("/api/predict", files=files)))
        holder.start()
        assert gated.entered.wait(20)
        started = time.monotonic()
        r = c.post("/api/predict", files=files)
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        assert time.monotonic() - started < 10.0  # shed (after 0.2 s), not queued behind the held first request
        gated.release.set()
        holder.join(20)
        assert first["r"].status_code == 200 and first["r"].json()["digit"] == 7
        assert c.post("/api/predict", files=files).status_code == 200  # the slot was given back


def test_parallel_requests_all_answered(client, mnist_test, model):
    """16 clients at once: every answer is the one for its own digit, none mixed up with another's."""
    x, _ = mnist_test
    with torch.no_grad():
        want = model(to_field(np.stack([prepare_array(d) for d in x[:16]]))).argmin(1).tolist()
    results: dict[int, httpx.Response] = {}

    def one(i):
        with httpx.Client(base_url=str(client.base_url), timeout=30) as c:
            results[i] = c.post("/api/predict", json={"pixels": x[i].tolist()})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    answered = [i for i in range(16) if results[i].status_code == 200]
    assert all(results[i].status_code == 503 for i in range(16) if i not in answered)
    assert len(answered) >= 8  # 8 admitted at once, the others wait up to 1 s for a slot
    assert [results[i].json()["digit"] for i in answered] == [want[i] for i in answered]


# ---- the command -------------------------------------------------------------------------------
def test_serve_listens_on_loopback_by_default(url):
    assert url.startswith("http://127.0.0.1:")  # the module's server: `lenet5 serve` with no --host


def test_serve_port_in_use_is_one_line_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        r = run_cli("serve", "--port", str(taken.getsockname()[1]), timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "cannot listen" in r.stderr, r.stderr
