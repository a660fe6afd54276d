"""``lenet5 serve``: a web page to draw a digit and watch every layer of LeNet-5 respond, and its JSON API.

A leaf: nothing in the core imports this module, and FastAPI, uvicorn and python-multipart (pip install
'lenet5[serve]') are imported only by :func:`create_app` and :func:`serve`.

The API (README.md, "Web demo and API"):
  GET  /api/health    {"status": "ok", "model": {...}, "limits": {...}}
  POST /api/predict   a multipart upload (field ``file``), a raw ``image/*`` body, or JSON ``{"pixels": [[...]]}``
                      -> digit, confidence, penalties, the 32x32 input and, with ``?features=1``, the maps of
                      C1, S2, C3 and S4. ``?ink=dark|light`` overrides the polarity found from the border.
A photo goes through :func:`lenet5.imageprep.digit_from_grey` as in ``lenet5 predict``; a drawing (an array
of grey values, 0-1 or 0-255, any size up to :data:`MAX_SIDE`) through :func:`lenet5.imageprep.prepare_array`,
so a drawing is cropped, size-normalised and centred by mass exactly as MNIST was made.

Errors are JSON ``{"error": "one line"}``: 400 malformed JSON or a corrupt image, 404 unknown path, 413 a
body over :data:`MAX_BODY` or an image over :data:`MAX_UPLOAD_PIXELS` (decompression bombs) or a drawing
over :data:`MAX_SIDE`, 415 a content type or file format we do not read, 422 nothing to classify (blank
drawing: "no ink", noise, a speck) or a malformed pixel array, 503 busy.

Concurrency. Decoding, preparation and the forward pass run on a small thread pool, off the event loop; the
model call itself holds a lock. At most :data:`MAX_BUSY` requests are admitted to that pool at a time, and a
request that waits more than :data:`ADMIT_WAIT_S` for admission gets 503 with Retry-After, so a burst is shed
quickly instead of piling up latency; uvicorn refuses connections beyond :data:`MAX_CONNECTIONS` with 503,
which bounds the memory held by request bodies in flight.
"""

# No "from __future__ import annotations": FastAPI reads the endpoints' annotations (Request) at runtime,
# and they name classes imported inside create_app, which string annotations could not resolve.
import asyncio
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .config import PIXEL_BACKGROUND, PIXEL_FOREGROUND, SQUASH_A
from .data import to_field
from .errors import ImageError, Lenet5Error
from .imageprep import digit_from_grey, image_to_grey, open_image, prepare_array
from .predict import confidence

WEB = Path(__file__).resolve().with_name("web")  # the page: index.html, app.js, style.css
MAX_BODY = 5 * 1024 * 1024  # bytes per request: a phone photo as JPEG fits, a 5 MB body is already generous
MAX_UPLOAD_PIXELS = 16_000_000  # a 12 MP phone photo fits; a 5 MB PNG can decode to gigabytes (bomb)
MAX_SIDE = 1024  # a drawing's longer side: the page sends 84x84, a 1024x1024 JSON array is ~4 MB
FEATURE_LAYERS = ("c1", "s2", "c3", "s4")  # the maps the page shows; C5 and F6 are vectors
WORKERS = 2  # threads that decode and prepare images (Pillow and numpy release the GIL for the heavy parts)
MAX_BUSY = 8  # requests admitted to the pool at once (running or queued there)
ADMIT_WAIT_S = 1.0  # longest wait for admission before 503: a burst is shed, not queued for seconds
MAX_CONNECTIONS = 100  # uvicorn answers 503 beyond this: at most 100 x 5 MB of bodies in flight
DIGITS = 3  # decimals of the maps in the JSON: the page draws 256 grey levels


class ApiError(Exception):
    """A request we refuse: an HTTP status and one line for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# ---- decoding requests -------------------------------------------------------------------------
def image_bytes_to_grey(data: bytes) -> np.ndarray:
    """An uploaded image file -> (H, W) float32 grey in [0, 1]: first frame, EXIF rotation applied.

    Raises:
        ApiError: 400 empty, truncated or corrupt; 413 over :data:`MAX_UPLOAD_PIXELS`; 415 not an image.
    """
    if not data:
        raise ApiError(400, "empty upload")
    try:
        image = open_image(io.BytesIO(data), "image", MAX_UPLOAD_PIXELS)
        return image_to_grey(image)
    except ImageError as e:
        raise ApiError(HTTP_STATUS.get(e.reason, 400), str(e)) from None


HTTP_STATUS = {"too-large": 413, "not-an-image": 415}  # ImageError reasons; the others are 400


def json_to_pixels(body: bytes) -> np.ndarray:
    """A JSON body ``{"pixels": [[...], ...]}`` -> the (H, W) (or (H, W, 3|4)) array of numbers it holds.

    Raises:
        ApiError: 400 not JSON; 413 a side over :data:`MAX_SIDE`; 422 not a rectangular array of numbers.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ApiError(400, f"malformed JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise ApiError(422, 'expected a JSON object {"pixels": [[row 0], [row 1], ...]}')
    rows = payload["pixels"]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and r for r in rows):
        raise ApiError(422, "pixels must be a non-empty list of non-empty rows")
    if len(rows) > MAX_SIDE or max(len(r) for r in rows) > MAX_SIDE:
        raise ApiError(413, f"drawing refused: over {MAX_SIDE} pixels on a side")
    try:
        array = np.array(rows)
    except ValueError:
        raise ApiError(422, "pixels must be a rectangular array: rows of equal length") from None
    if array.dtype.kind not in "biuf":
        raise ApiError(422, "pixels must be numbers (grey 0-255 or 0-1)")
    return array


def _content_kind(content_type: str) -> str:
    """'multipart', 'json' or 'image' from a Content-Type header; 415 for anything else."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return "multipart"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media.startswith("image/"):
        return "image"
    shown = media or "none"
    raise ApiError(415, f"unsupported content type {shown}: send multipart/form-data, application/json or image/*")


# ---- the network -------------------------------------------------------------------------------
def _rounded(t: torch.Tensor) -> list:
    return np.round(t.double().numpy(), DIGITS).tolist()  # float64 first: 0.123, not 0.12300000339746475


def classify(model: torch.nn.Module, digit: np.ndarray, features: bool, lock: threading.Lock) -> dict:
    """A uint8 28x28 digit (ink = 255) -> the API's answer (see the module docstring).

    The digit, confidence and penalties are computed as by :func:`lenet5.predict.predict_images`.
    """
    device = next(model.parameters()).device
    x = to_field(digit).to(device)  # (1, 1, 32, 32), the paper's scaling
    with lock, torch.no_grad():  # the layers only when asked for: the plain forward may run in the compiled engine
        acts = model.activations(x) if features else {"input": x, "penalties": model(x)}
    penalties = acts["penalties"].cpu()  # (1, 10)
    answer = {
        "digit": int(penalties[0].argmin()),
        "confidence": round(float(confidence(penalties)[0]), 4),
        "penalties": [round(float(p), 4) for p in penalties[0]],
        "input": _rounded(acts["input"][0, 0].cpu()),  # (32, 32)
        "input_range": [PIXEL_BACKGROUND, PIXEL_FOREGROUND],
    }
    if features:
        answer["features"] = {name: _rounded(acts[name][0].cpu()) for name in FEATURE_LAYERS}  # (maps, h, w)
        answer["features_range"] = [-SQUASH_A, SQUASH_A]  # the squashing function's range (Appendix A)
    return answer


def model_info(model: torch.nn.Module, name: str) -> dict:
    config = getattr(model, "config", None)
    return {
        "name": name,
        "arch": getattr(config, "arch", type(model).__name__),
        "c3_table": getattr(config, "c3_table", None),
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": "(N, 1, 32, 32), background -0.1, ink 1.175 (Sec. II-A)",
        "output": "(N, 10) RBF penalties; the prediction is the smallest",
    }


# ---- the app -----------------------------------------------------------------------------------
async def _read_body(request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {int(declared):,} bytes is over the limit of {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _upload_from_form(request, body: bytes) -> bytes:
    """The bytes of the multipart field ``file``, parsed from a body already read (and size-checked)."""
    from starlette.requests import Request

    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except Exception as e:  # starlette raises its own MultiPartException / HTTPException for malformed forms
        detail = getattr(e, "detail", None) or getattr(e, "message", None) or str(e) or type(e).__name__
        raise ApiError(400, f"malformed multipart form ({str(detail).splitlines()[0][:120]})") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "multipart form has no file field named 'file'")
        return await upload.read()
    finally:
        await form.close()


def create_app(
    model: torch.nn.Module,
    name: str = "custom",
    workers: int = WORKERS,
    max_busy: int = MAX_BUSY,
    admit_wait_s: float = ADMIT_WAIT_S,
    max_body: int = MAX_BODY,
):
    """The FastAPI app: the page under ``/`` (files of ``lenet5/web`` only) and the API under ``/api``.

    Args:
        model: a LeNet5 in eval mode.
        name: how ``/api/health`` names the model ('paper', a file path...).
        workers: threads that decode, prepare and classify.
        max_busy: requests admitted to those threads at once; more wait up to ``admit_wait_s``, then get 503.
        max_body: request body limit in bytes (413 beyond).
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse
        from fastapi.staticfiles import StaticFiles
        from starlette.exceptions import HTTPException
    except ImportError:
        raise Lenet5Error("the web demo needs FastAPI and python-multipart: pip install 'lenet5[serve]'") from None
    from contextlib import asynccontextmanager

    pool = ThreadPoolExecutor(workers, thread_name_prefix="lenet5-serve")
    lock = threading.Lock()  # one forward pass at a time: the model is shared by the pool's threads
    admitted = asyncio.Semaphore(max_busy)

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="lenet5", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return error(e.status, e.message, {"Retry-After": "1"} if e.status == 503 else None)

    @app.exception_handler(HTTPException)
    async def _http_error(request, e: HTTPException):
        message = {404: "not found", 405: "method not allowed"}.get(e.status_code, str(e.detail))
        return error(e.status_code, message, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        # The page loads nothing from elsewhere (data: is its empty favicon) and runs no inline script.
        response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/api/health")
    async def health() -> dict:
        limits = {"max_body_bytes": max_body, "max_upload_pixels": MAX_UPLOAD_PIXELS, "max_side": MAX_SIDE}
        return {"status": "ok", "model": model_info(model, name), "limits": limits}

    @app.post("/api/predict")
    async def predict(request: Request, features: bool = False, ink: str = "auto"):
        if ink not in ("auto", "dark", "light"):
            raise ApiError(422, f"ink must be auto, dark or light, got {ink[:20]!r}")
        kind = _content_kind(request.headers.get("content-type", ""))
        body = await _read_body(request, max_body)
        if kind == "multipart":
            body = await _upload_from_form(request, body)

        def work() -> dict:
            try:
                if kind == "json":
                    digit = prepare_array(json_to_pixels(body), ink)
                else:
                    digit = digit_from_grey(image_bytes_to_grey(body), ink)
            except ImageError as e:  # blank, noise, a speck, an unusable array: nothing to classify
                raise ApiError(422, str(e)) from None
            return classify(model, digit, features, lock)

        arrived = time.perf_counter()
        try:
            await asyncio.wait_for(admitted.acquire(), admit_wait_s)
        except asyncio.TimeoutError:
            raise ApiError(503, "busy: too many requests at once, try again in a moment") from None
        admitted_at = time.perf_counter()
        try:
            answer = await asyncio.get_running_loop().run_in_executor(pool, work)
        finally:
            admitted.release()
        wait_ms, work_ms = 1000 * (admitted_at - arrived), 1000 * (time.perf_counter() - admitted_at)
        timing = f"wait;dur={wait_ms:.1f};desc=admission, work;dur={work_ms:.1f};desc=prepare+network"
        # As is: FastAPI's encoder would walk the ~8,000 floats of the maps one by one.
        return JSONResponse(answer, headers={"Server-Timing": timing})

    app.mount("/", StaticFiles(directory=WEB, html=True), name="web")  # after /api: the API routes win
    return app


def serve(model: torch.nn.Module, host: str = "127.0.0.1", port: int = 8000, name: str = "custom") -> None:
    """Run the web demo until interrupted (uvicorn, one process); port 0 picks a free port.

    Prints ``lenet5 serve: http://HOST:PORT/`` once the socket listens (with the port actually bound).

    Raises:
        Lenet5Error: uvicorn is missing, or the address cannot be bound (in use, not local...).
    """
    try:
        import uvicorn
    except ImportError:
        raise Lenet5Error("lenet5 serve needs uvicorn: pip install 'lenet5[serve]'") from None
    app = create_app(model, name)
    try:  # bound here, not by uvicorn, to report the real port and a one-line error
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
        # Accepted connections inherit this; asyncio sets it only on sockets made with proto=IPPROTO_TCP,
        # and without it a keep-alive answer waits ~40 ms for the client's delayed ACK (Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, OverflowError) as e:
        raise Lenet5Error(f"cannot listen on {host}:{port} ({e.strerror if isinstance(e, OSError) else e})") from None
    bound = sock.getsockname()[1]
    # torch's thread count is left alone: torch.set_num_threads(1) made no measurable difference to the
    # server's throughput or latency (BENCHMARKS.md, "Web server under load").
    shown = f"[{host}]" if ":" in host else host
    print(f"lenet5 serve: http://{shown}:{bound}/  (Ctrl+C to stop)", flush=True)
    config = uvicorn.Config(app, log_level="warning", limit_concurrency=MAX_CONNECTIONS)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
