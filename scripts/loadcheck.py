#!/usr/bin/env python
"""Load check of a running `lenet5 serve`: many concurrent clients POSTing real MNIST test digits as PNGs.

    lenet5 serve --port 8000 &
    python scripts/loadcheck.py --url http://127.0.0.1:8000 --clients 50 --seconds 30

Each client (an asyncio task with its own keep-alive connection) uploads a PNG, waits for the answer and
sends the next, for the given time. The PNGs are the first MNIST test digits enlarged to 112x112, dark ink
on a white 160x160 page, as a scan would be. Prints requests/s, latency percentiles of the answered
requests as the client saw them and as the server spent them (its Server-Timing header: the wait for
admission plus the work), 503s (shed by the server's admission limit) apart from other errors, and how many
answers were the right digit. The client runs on the same machine: its own CPU use counts in its latencies.
Needs httpx (the 'dev' extra).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from collections import Counter

import httpx
from PIL import Image

from lenet5.data import load_split_arrays


def digit_pngs(n: int) -> list[tuple[bytes, int]]:
    """The first n MNIST test digits as PNG scans (dark ink on white), with their labels."""
    x, y = load_split_arrays("mnist", "test")
    out = []
    for digit, label in zip(x[:n], y[:n], strict=True):
        page = Image.new("L", (160, 160), 255)
        page.paste(Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC), (24, 24))
        buf = io.BytesIO()
        page.save(buf, "PNG")
        out.append((buf.getvalue(), int(label)))
    return out


async def client(url: str, pngs, start: int, stop_at: float, stats: dict) -> None:
    """One client: its own connection (kept alive), one request at a time, until ``stop_at``."""
    k = start
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) as http:
        while time.perf_counter() < stop_at:
            png, label = pngs[k % len(pngs)]
            k += 1
            t0 = time.perf_counter()
            try:
                r = await http.post("/api/predict", files={"file": ("digit.png", png, "image/png")})
            except httpx.HTTPError as e:
                stats["codes"][type(e).__name__] += 1
                continue
            elapsed = time.perf_counter() - t0
            stats["codes"][r.status_code] += 1
            if r.status_code == 200:
                stats["latency"].append(elapsed)
                stats["server"].append(_server_ms(r.headers.get("server-timing", "")))
                stats["right"] += r.json()["digit"] == label


def _server_ms(header: str) -> float:
    """The total of a Server-Timing header's durations (ms): the time the server spent on the request."""
    params = [p.strip() for metric in header.split(",") for p in metric.split(";")]
    return sum(float(p.removeprefix("dur=")) for p in params if p.startswith("dur="))


async def run(url: str, clients: int, seconds: float, n_digits: int) -> dict:
    pngs = digit_pngs(n_digits)
    stats = {"codes": Counter(), "latency": [], "server": [], "right": 0}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        (await http.get("/api/health")).raise_for_status()
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(client(url, pngs, i * 7, stop_at, stats) for i in range(clients)))
    wall = time.perf_counter() - t0
    lat = sorted(stats["latency"])
    total = sum(stats["codes"].values())
    ok = stats["codes"][200]
    q, sq = _percentiles(lat), _percentiles(sorted(stats["server"]))
    return {
        "url": url,
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": total,
        "requests_per_s": round(total / wall, 1),
        "answered_per_s": round(ok / wall, 1),
        "ok": ok,
        "busy_503": stats["codes"][503],
        "errors": total - ok - stats["codes"][503],
        "error_kinds": {str(k): v for k, v in stats["codes"].items() if k not in (200, 503)},
        "latency_ms": {"p50": round(1000 * q[49], 1), "p90": round(1000 * q[89], 1), "p99": round(1000 * q[98], 1)},
        "server_ms": {"p50": round(sq[49], 1), "p90": round(sq[89], 1), "p99": round(sq[98], 1)},
        "right_digit": f"{stats['right']}/{ok}",
    }


def _percentiles(values: list[float]) -> list[float]:
    return statistics.quantiles(values, n=100, method="inclusive") if len(values) >= 2 else [float("nan")] * 99


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default: %(default)s)")
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to run (default: %(default)s)")
    p.add_argument("--digits", type=int, default=200, help="distinct MNIST test digits sent (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    result = asyncio.run(run(args.url.rstrip("/"), args.clients, args.seconds, args.digits))
    if args.json:
        print(json.dumps(result))
    else:
        lat = result["latency_ms"]
        print(f"{result['clients']} clients, {result['seconds']} s against {result['url']}")
        print(f"  requests/s      {result['requests_per_s']} ({result['requests']} requests)")
        print(f"  answered/s      {result['answered_per_s']} ({result['ok']} answered)")
        print(f"  right digit     {result['right_digit']}")
        print(f"  latency (200s)  p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms")
        srv = result["server_ms"]
        print(f"  in the server   p50 {srv['p50']} ms, p90 {srv['p90']} ms, p99 {srv['p99']} ms (Server-Timing)")
        print(f"  503 busy        {result['busy_503']}")
        print(f"  other errors    {result['errors']} {result['error_kinds'] or ''}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
