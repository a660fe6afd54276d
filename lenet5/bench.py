"""``lenet5 bench``: our engines against what a user would otherwise run, measured side by side in one run.

Rows (issue "Speed and scale"):
  per-pattern SDLM training of the paper model  vs the same step in eager PyTorch, batch 1
  mini-batch training, batch 128                 vs a conventional PyTorch LeNet-5 (Conv2d/Tanh/AvgPool2d/
                                                    Linear, softmax cross-entropy, Adam) at batch 128
  batch inference, batch 1000                    vs that conventional model in eager PyTorch and in ONNX Runtime
  one image, in process                          latency percentiles (and eager PyTorch for reference)
  peak memory of a training run                  RSS of a `lenet5 train` process (one pass)
Speeds are reported as ratios to a baseline measured in the same run, since shared machines are noisy.
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date

import torch
from torch import nn

from .data import load_mnist
from .errors import Lenet5Error
from .loss import map_loss
from .model import LeNet5
from .optim import SDLM


def conventional_lenet5() -> nn.Module:
    """The LeNet-5 most code calls LeNet-5: dense C3, average pooling, tanh, a linear 10-way output."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),  # (N,6,14,14)
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),  # (N,16,5,5)
        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),  # (N,120)
        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),  # (N,10) logits
    )  # fmt: skip


def _rate(fn: Callable[[], int], min_seconds: float, repeats: int) -> float:
    """Items per second of ``fn`` (which returns how many items it processed): the best of ``repeats``."""
    fn()  # warm-up (compilation, allocator)
    best = 0.0
    for _ in range(repeats):
        done, t0 = 0, time.perf_counter()
        while True:
            done += fn()
            dt = time.perf_counter() - t0
            if dt >= min_seconds:
                break
        best = max(best, done / dt)
    return best


def bench_per_pattern(x, y, seconds: float, repeats: int) -> dict:
    from .engine import NumbaEngine

    model = LeNet5()
    opt = SDLM(model.parameters(), lr=1e-5, mu=0.5)
    opt.estimate_hessian(model, x[:500])
    ref = LeNet5()
    ref.load_state_dict(model.state_dict())
    ref_opt = SDLM(ref.parameters(), lr=1e-5, mu=0.5)
    ref_opt.estimate_hessian(ref, x[:500])
    engine = NumbaEngine(model, "map")
    engine.set_steps(opt.step_sizes())
    n_fast, n_ref = 2000, 100

    def fast() -> int:
        engine.train(x[:n_fast], y[:n_fast])
        return n_fast

    def eager() -> int:
        for i in range(n_ref):
            ref_opt.zero_grad()
            map_loss(ref(x[i : i + 1]), y[i : i + 1]).backward()
            ref_opt.step()
        return n_ref

    ours, base = _rate(fast, seconds, repeats), _rate(eager, seconds, repeats)
    return {"row": "per-pattern SDLM training (patterns/s)", "ours": ours, "baseline": base,
            "baseline_name": "eager PyTorch, batch 1", "ratio": ours / base, "goal": ">= 4,000/s",
            "met": ours >= 4000}  # fmt: skip


def bench_minibatch(x, y, seconds: float, repeats: int, batch: int = 128) -> dict:
    from .engine import NumbaEngine

    model = LeNet5()
    opt = SDLM(model.parameters(), lr=1e-5, mu=0.5)
    opt.estimate_hessian(model, x[:500])
    engine = NumbaEngine(model, "map")
    engine.set_steps(opt.step_sizes())
    conv = conventional_lenet5()
    adam = torch.optim.Adam(conv.parameters(), lr=1e-3)
    n_batches = 8

    def fast() -> int:
        for b in range(n_batches):
            engine.train_batch(x[b * batch : (b + 1) * batch], y[b * batch : (b + 1) * batch])
        return n_batches * batch

    def eager() -> int:
        for b in range(n_batches):
            adam.zero_grad()
            nn.functional.cross_entropy(conv(x[b * batch : (b + 1) * batch]), y[b * batch : (b + 1) * batch]).backward()
            adam.step()
        return n_batches * batch

    ours, base = _rate(fast, seconds, repeats), _rate(eager, seconds, repeats)
    return {"row": f"mini-batch training, batch {batch} (patterns/s)", "ours": ours, "baseline": base,
            "baseline_name": "conventional LeNet-5, eager PyTorch + Adam", "ratio": ours / base, "goal": ">= 2x",
            "met": ours >= 2 * base}  # fmt: skip


def _onnx_session(model: nn.Module):
    """An ONNX Runtime session for ``model``, or None when onnx/onnxruntime are not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        torch.onnx.export(model, (torch.zeros(1, 1, 32, 32),), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)  # fmt: skip
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def bench_inference(x, seconds: float, repeats: int, batch: int = 1000) -> list[dict]:
    model = LeNet5().eval().use_engine()  # as load_model() returns it: forward runs in the compiled engine
    conv = conventional_lenet5().eval()
    xb = x[:batch].contiguous()
    xb_np = xb.numpy()

    def fast() -> int:
        with torch.no_grad():
            model(xb)
        return batch

    def eager() -> int:
        with torch.no_grad():
            conv(xb)
        return batch

    fast()  # compile (or load from numba's cache) before timing
    ours, base = _rate(fast, seconds, repeats), _rate(eager, seconds, repeats)
    rows = [{"row": f"batch inference, batch {batch} (images/s)", "ours": ours, "baseline": base,
             "baseline_name": "conventional LeNet-5, eager PyTorch", "ratio": ours / base, "goal": ">= 3x",
             "met": ours >= 3 * base}]  # fmt: skip
    session = _onnx_session(conv)
    if session is not None:

        def onnx() -> int:
            session.run(None, {"x": xb_np})
            return batch

        base = _rate(onnx, seconds, repeats)
        rows.append({"row": f"batch inference, batch {batch} (images/s)", "ours": ours, "baseline": base,
                     "baseline_name": "conventional LeNet-5, ONNX Runtime", "ratio": ours / base, "goal": ">= 1.5x",
                     "met": ours >= 1.5 * base})  # fmt: skip
    return rows


def bench_single(x, n: int = 2000) -> dict:
    """One image through ``model(x)`` under no_grad: the model as load_model() returns it, and the same model
    with the engine off (the PyTorch modules)."""
    model = LeNet5().eval().use_engine()
    reference = copy.deepcopy(model).use_engine(False)
    one = x[:1].contiguous()

    def latencies(net) -> list[float]:
        out = []
        with torch.no_grad():
            net(one)  # warm up (the engine compiles or loads from numba's cache)
            for _ in range(n):
                t0 = time.perf_counter()
                net(one)
                out.append((time.perf_counter() - t0) * 1000)
        return sorted(out)

    ours, eager = latencies(model), latencies(reference)
    p50, p99 = statistics.median(ours), ours[int(0.99 * len(ours))]
    return {"row": "one image, in process (ms)", "ours": p50, "p99": p99, "baseline": statistics.median(eager),
            "baseline_name": "the paper model in eager PyTorch (p50)", "ratio": statistics.median(eager) / p50,
            "goal": "p50 <= 0.3 ms", "met": p50 <= 0.3}  # fmt: skip


def bench_memory(quick: bool, data_dir=None) -> dict:
    """Peak RSS of a real `lenet5 train` process: one full pass (or 5,000 patterns with --quick)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "lenet5", "train", "--quiet", "--epochs", "1", "--no-train-eval",
               "--out-dir", tmp, "--run-name", "mem"] + (["--train-subset", "5000"] if quick else [])  # fmt: skip
        cmd += ["--data-dir", str(data_dir)] if data_dir else []
        with open(os.path.join(tmp, "stderr"), "w+") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)  # reaps the child and returns its own resource usage
            proc.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            last = (err.read().strip().splitlines() or ["no message"])[-1]
        if proc.returncode != 0:
            raise Lenet5Error(f"the training run of the memory row failed: {last}")
    peak_mib = usage.ru_maxrss / 1024  # Linux reports KiB
    return {"row": "peak memory of a training run (MiB RSS)", "ours": peak_mib, "baseline": None,
            "baseline_name": "-", "ratio": None, "goal": "<= 1024 MiB", "met": peak_mib <= 1024}  # fmt: skip


def machine() -> dict:
    import numba

    from .train import cpu_name, cpu_target

    return {"cpu": cpu_name(), "cpu_target": cpu_target(), "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "numba": numba.__version__,
            "engine_threads": torch.get_num_threads(), "python": platform.python_version(),
            "date": date.today().isoformat()}  # fmt: skip


def run_bench(seconds: float = 2.0, repeats: int = 3, quick: bool = False, data_dir=None) -> dict:
    """Measure every row; ``quick`` shortens the timings and the memory run (for tests)."""
    from .engine import HAVE_NUMBA

    if not HAVE_NUMBA:
        raise Lenet5Error("lenet5 bench measures the compiled engine, which needs numba: pip install 'lenet5[fast]'")
    x, y = load_mnist("train", data_dir, limit=4096)
    torch.manual_seed(0)
    rows = [bench_per_pattern(x, y, seconds, repeats), bench_minibatch(x, y, seconds, repeats)]
    rows += bench_inference(x, seconds, repeats)
    rows.append(bench_single(x, n=200 if quick else 2000))
    rows.append(bench_memory(quick, data_dir))
    return {"machine": machine(), "rows": rows, "command": " ".join(["lenet5", "bench", *sys.argv[2:]])}


def _fmt(v, row: str) -> str:
    if v is None:
        return "-"
    if "(ms)" in row:
        return f"{v:.3f}"
    return f"{v:,.0f}"


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores; torch {m['torch']} with {m['torch_threads']} "
        f"threads, numba {m['numba']} with {m.get('engine_threads', m.get('numba_threads'))} threads, "
        f"Python {m['python']}).",
        f"Command: `{result['command']}`",
        "",
        "| what | ours | baseline (same run) | ratio | goal | met |",
        "|---|---:|---|---:|---|---|",
    ]
    for r in result["rows"]:
        base = f"{_fmt(r['baseline'], r['row'])} ({r['baseline_name']})" if r["baseline"] is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        ours = _fmt(r["ours"], r["row"]) + (f" (p99 {r['p99']:.3f})" if "p99" in r else "")
        lines.append(f"| {r['row']} | {ours} | {base} | {ratio} | {r['goal']} | {'yes' if r['met'] else 'no'} |")
    return "\n".join(lines) + "\n"
