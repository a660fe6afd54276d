"""train() and evaluate(): the paper's recipe (Sec. II-C, III-C) with a run directory that survives crashes.

A run directory holds:
  config.json      the resolved TrainConfig
  metrics.jsonl    one JSON line per completed pass (rewritten atomically from the checkpoint)
  checkpoint.pt    weights + history after the last completed pass (atomic)
  weights.pt       the final weights (atomic), loadable with lenet5.load_model
Every pass derives its random numbers from (seed, pass), so a run resumed from its checkpoint ends
with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from .config import PAPER_TEST_ERROR, PAPER_TRAIN_ERROR_PASS19, TrainConfig, batch_step_scale, valid_device
from .data import load_mnist
from .distort import DistortedSet, augment, salt_and_pepper
from .errors import Lenet5Error
from .fileio import atomic_write_text
from .loss import loss_fn
from .model import LeNet5, build_model
from .optim import SDLM


@torch.no_grad()
def evaluate(model: LeNet5, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500, device: str = "cpu") -> dict:
    """Test error and its breakdown: misses, confusion matrix, per-class error, misclassified indices.

    Returns:
        dict with error_rate (percent), misses, n, confusion (10x10 list, rows = true class),
        per_class_error (percent), misclassified (indices), predictions.
    """
    model.eval()
    y = y.cpu()  # the confusion matrix is counted on the CPU, wherever the data and the model are
    preds, penalties = [], []
    for start in range(0, len(x), batch_size):
        p = model(x[start : start + batch_size].to(device)).cpu()
        penalties.append(p)
        preds.append(p.argmin(1))
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    n_cls = penalties[0].shape[1] if penalties else 10
    confusion = torch.zeros(n_cls, n_cls, dtype=torch.long)
    confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    wrong = pred != y
    per_class = confusion.sum(1)
    per_class_err = [
        100.0 * (1 - confusion[c, c].item() / per_class[c].item()) if per_class[c] else 0.0 for c in range(n_cls)
    ]
    n = len(y)
    return {
        "error_rate": 100.0 * wrong.sum().item() / max(n, 1),
        "misses": int(wrong.sum()),
        "n": n,
        "confusion": confusion.tolist(),
        "per_class_error": per_class_err,
        "misclassified": torch.nonzero(wrong).flatten().tolist(),
        "predictions": pred.tolist(),
    }


def set_determinism(seed: int, threads: int = 0) -> None:
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def choose_engine(config: TrainConfig) -> str:
    """'numba' for training on the CPU when numba is installed, else 'torch'."""
    from .engine import HAVE_NUMBA

    fits = config.device == "cpu" and config.model.arch == "lenet5" and config.optimizer == "sdlm"
    if config.engine == "numba":
        if not HAVE_NUMBA:
            raise Lenet5Error("--engine numba needs numba: pip install 'lenet5[fast]'")
        if not fits:
            raise Lenet5Error("--engine numba trains LeNet-5 with SDLM on the CPU only")
        return "numba"
    if config.engine == "auto" and fits and HAVE_NUMBA:
        return "numba"
    return "torch"


@dataclass
class PassResult:
    loss: float
    errors: int  # running training errors during the pass (before each update)
    patterns: int


@dataclass
class Distributed:
    """This process's place in a torchrun launch (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(config: TrainConfig) -> Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    import torch.distributed as dist

    if config.batch_size % world:
        raise Lenet5Error(f"--batch-size {config.batch_size} must be a multiple of the {world} processes")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if config.device.startswith("cuda") else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class PassPatterns:
    """The patterns of one pass, made on demand a batch at a time (never a copy of the whole set): the
    training set in this pass's random order, or with distortions each digit as one of its ten versions."""

    x: torch.Tensor  # (N, 1, 32, 32) the training set
    y: torch.Tensor  # (N,)
    order: np.ndarray  # (N,) which digit comes at each position of the pass
    versions: np.ndarray | None = None  # (N,) with distortions: which version is shown at each position
    distorted: DistortedSet | None = None
    augment: bool = False  # a fresh random distortion of every pattern (modern training)
    rotate: float = 0.0  # with augment: rotations up to +-rotate degrees
    elastic: float = 0.0  # with augment: elastic distortions of this strength
    noise: float = 0.0  # salt-and-pepper flip probability
    rng: np.random.Generator | None = None  # draws augmentation and noise, call after call

    def __len__(self) -> int:
        return len(self.order)

    def get(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.order[positions]
        rows = torch.as_tensor(index, device=self.x.device)
        x = self.x[rows] if self.distorted is None else self.distorted.patterns(index, self.versions[positions])
        if self.augment:
            x = augment(x, self.rng, self.rotate, self.elastic)
        if self.noise > 0:
            x = salt_and_pepper(x, self.noise, self.rng)
        return x, self.y[rows]


def _torch_pass(
    model,
    opt,
    criterion,
    patterns: PassPatterns,
    config,
    bar,
    ddp=None,
    place: Distributed | None = None,
    lr_at: Callable[[int], float] | None = None,
    first_step: int = 0,
) -> PassResult:
    """One pass of updates with autograd: SDLM per pattern or per mini-batch, or a modern optimizer.

    Under torchrun each global batch is split over the processes (rank r takes patterns r, r + W, ...)
    and DistributedDataParallel averages their gradients, so every process makes the same step as one
    process on the whole batch would. ``lr_at(step)`` sets a modern optimizer's rate before each step.
    """
    place = place or Distributed()
    net = ddp or model
    net.train()
    device = config.device
    bs = config.batch_size
    loss_sum, errors = 0.0, 0
    n = len(patterns)
    for step, start in enumerate(range(0, n, bs), start=first_step):
        xb, yb = patterns.get(np.arange(start + place.rank, min(start + bs, n), place.world))
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad(set_to_none=True)
        penalties = net(xb)
        loss = criterion(penalties, yb)
        total = min(bs, n - start)
        if config.optimizer == "sdlm":
            # the summed per-pattern gradients times the batch rule's factor. DEVIATION(D7)
            # (DDP divides by the number of processes, hence the factor world.)
            scale = len(xb) * place.world * batch_step_scale(config.batch_lr_scale, total)
        else:  # the batch mean, as these optimizers expect (DDP averages the processes' means)
            scale = 1.0
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
        (loss * scale).backward()
        opt.step()
        loss_sum += loss.item() * len(xb)
        errors += int((penalties.argmin(1) != yb).sum())
        if not math.isfinite(loss_sum):
            break
        bar.update(total)
        bar.set_postfix_str(f"err {100 * errors * place.world / (start + total):.2f}%", refresh=False)
    if place.world > 1:
        import torch.distributed as dist

        sums = torch.tensor([loss_sum, float(errors)], dtype=torch.float64, device=device)
        dist.all_reduce(sums)
        loss_sum, errors = float(sums[0]), int(sums[1])
    return PassResult(loss_sum, errors, n)


def _numba_pass(engine, opt, patterns: PassPatterns, config, bar) -> PassResult:
    """One pass in the compiled engine: per-pattern updates, or one update per mini-batch."""
    engine.set_steps(opt.step_sizes())
    bs = config.batch_size
    chunk = 2000 if bs == 1 else bs
    n = len(patterns)
    loss_sum, errors, done = 0.0, 0, 0
    for start in range(0, n, chunk):
        xb, yb = patterns.get(np.arange(start, min(start + chunk, n)))
        if bs == 1:
            loss, err = engine.train(xb, yb)
        else:  # the engine's batch gradient is a sum; the rule's factor uses this batch's size (the last is short)
            loss, err = engine.train_batch(xb, yb, batch_step_scale(config.batch_lr_scale, len(yb)))
        loss_sum, errors, done = loss_sum + loss, errors + err, done + len(yb)
        if not math.isfinite(loss_sum):
            break
        bar.update(len(yb))
        bar.set_postfix_str(f"err {100 * errors / done:.2f}%", refresh=False)
    return PassResult(loss_sum, errors, n)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SDLM (the paper's) or the modern optimizer ``config.optimizer`` names."""
    if config.optimizer == "sdlm":
        return SDLM(model.parameters(), lr=config.eta_for(0), mu=config.mu)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
    )


def lr_schedule(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """The modern optimizers' rate at each step: one-cycle (10% linear warm-up, cosine to 0) or constant."""
    peak = config.lr
    if config.schedule == "constant":
        return lambda step: peak
    warm = max(1, total_steps // 10)

    def lr_at(step: int) -> float:
        if step < warm:
            return peak * (step + 1) / warm
        return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    return lr_at


def load_training_file(path: str, subset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) from a torch file holding {"x": (N,1,32,32) float32, "y": (N,) int64}, checked."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise Lenet5Error(f"{path}: cannot read the training file ({type(e).__name__})") from None
    x, y = (data.get("x"), data.get("y")) if isinstance(data, dict) else (None, None)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise Lenet5Error(f"{path}: a training file holds a dict with tensors 'x' and 'y'")
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 32, 32) or y.shape != (len(x),) or len(x) == 0:
        raise Lenet5Error(f"{path}: expected x of shape (N,1,32,32) and y of shape (N,), got {tuple(x.shape)}")
    if y.min() < 0 or y.max() > 9:
        raise Lenet5Error(f"{path}: labels must be 0-9")
    if subset:
        x, y = x[:subset], y[:subset]
    return x.float(), y.long()


def format_pass(m: dict, epochs: int) -> str:
    """One fixed-format console line per pass, in the spirit of the paper's tables."""
    train = f"{m['train_error']:5.2f}%" if m.get("train_error") is not None else "   -  "
    return (
        f"pass {m['epoch']:2d}/{epochs}  eta {m['eta']:.0e}  loss {m['loss']:7.4f}  "
        f"train error {train}  test error {m['test_error']:5.2f}% ({m['test_misses']} misses)  "
        f"{m['patterns_per_second']:,.0f} pat/s  {m['seconds']:.1f}s"
    )


def paper_comparison(history: list[dict], config: TrainConfig) -> str:
    """The closing lines: our numbers beside the paper's."""
    arch = config.model.arch
    key = {"mlp300": "mlp-300"}.get(arch, arch) + ("-distort" if config.distort and arch == "lenet5" else "")
    last = history[-1]
    paper = f"   (paper, {key}: {PAPER_TEST_ERROR[key]}%)" if key in PAPER_TEST_ERROR else "   (not in the paper)"
    lines = [f"test error after {last['epoch']} passes: {last['test_error']:.2f}%{paper}"]
    at19 = next((m for m in history if m["epoch"] == 19), None)
    if arch == "lenet5" and not config.distort and at19 and at19.get("train_error") is not None:
        lines.append(f"training error after pass 19: {at19['train_error']:.2f}%   (paper: {PAPER_TRAIN_ERROR_PASS19}%)")
    return "\n".join(lines)


def _resume_config(run_dir: Path) -> TrainConfig:
    """The config of a run to resume, validated; stale temp files of killed writers are removed."""
    try:
        data = json.loads((run_dir / "config.json").read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        config = TrainConfig.from_dict(data)
    except (OSError, ValueError, TypeError) as e:
        raise Lenet5Error(f"{run_dir}: cannot resume: config.json does not describe a run ({e})") from None
    for stale in run_dir.glob(".*.tmp"):  # left by a writer that was killed before its rename
        stale.unlink(missing_ok=True)
    return config


def _start_run_dir(run_dir: Path, config: TrainConfig, resumed: bool) -> None:
    """Write config.json (new runs) and append this code's commit to commit.txt (provenance)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Lenet5Error(f"{run_dir}: cannot create the run directory ({e.strerror or e})") from None
    if not resumed:
        atomic_write_text(run_dir / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
        atomic_write_text(run_dir / "machine.json", json.dumps(machine_info(config.device)) + "\n")
    commit = _git_commit()
    if commit:  # which code made (or continued) this run; '+dirty' marks uncommitted changes
        old = (run_dir / "commit.txt").read_text() if (run_dir / "commit.txt").exists() else ""
        atomic_write_text(run_dir / "commit.txt", old + commit + ("  (resumed)" if resumed else "") + "\n")


def cpu_name() -> str:
    """The CPU's model name as the OS reports it ('unknown' where it does not)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return platform.processor() or "unknown"


def machine_info(device: str) -> dict:
    """What ran a run: CPU, core count, torch version and, for CUDA runs, the GPU (timings depend on them).

    ``cpu_target`` is the instruction set the compiled engine was generated for (LLVM's name for this CPU)
    and torch's CPU kernels' level: float results, and so a run's exact numbers, can differ between targets.
    """
    import platform

    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") and torch.cuda.is_available() else None
    return {"hostname": platform.node(), "cpu": cpu_name(), "cpu_target": cpu_target(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "gpu": gpu}  # fmt: skip


def cpu_target() -> str:
    """e.g. 'znver4/AVX512': the host CPU as numba's compiler targets it, and torch's CPU capability."""
    try:
        import llvmlite.binding as llvm

        llvm_cpu = llvm.get_host_cpu_name()
    except ImportError:  # no numba here: only torch's kernels matter
        llvm_cpu = "-"
    return f"{llvm_cpu}/{torch.backends.cpu.get_cpu_capability()}"


def resolve_device(device: str) -> str:
    """Check that ``device`` names a device this machine has; returns it unchanged."""
    if not valid_device(device):
        raise Lenet5Error(f"unknown device {device!r}; expected cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise Lenet5Error(f"--device {device} was asked for but torch sees no CUDA device")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise Lenet5Error(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def _git_commit() -> str | None:
    """The commit of the lenet5 source tree, with '+dirty' if it has uncommitted changes; None outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "lenet5"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _barrier(place: Distributed) -> None:
    if place.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _run_dir(config: TrainConfig) -> Path:
    name = config.run_name or (
        datetime.now().strftime("%Y%m%d-%H%M%S")
        + f"-{config.dataset}-{'distort-' if config.distort else ''}s{config.seed}"
    )
    return Path(config.out_dir) / name


def train(
    config: TrainConfig,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train LeNet-5 with SDLM as the paper did (or as ``config`` says) and write a run directory.

    Args:
        config: the recipe; ignored when ``resume`` is given (the run's own config.json is used).
        resume: a run directory to continue from its last completed pass.
        progress: show a progress bar per pass.
        log: where the per-pass lines go (default: print to stdout).

    Returns:
        dict with run_dir, history (per-pass metrics), test (final evaluate() result), engine.
    """
    log = log or (lambda s: print(s, flush=True))
    start_epoch, history = 0, []
    if resume is not None:
        run_dir = Path(resume)
        config = _resume_config(run_dir)
    else:
        config = dataclasses.replace(config)  # never change the caller's object
        run_dir = _run_dir(config)
        if (run_dir / "checkpoint.pt").exists():
            raise Lenet5Error(f"{run_dir} already holds a run; use --resume {run_dir} or another --run-name")
    place = init_distributed(config)
    if not place.main:
        log, progress = (lambda s: None), False
    if place.world > 1:
        if config.batch_size == 1:
            raise Lenet5Error("torchrun training needs mini-batches (--batch-size >= the number of processes)")
        config.engine = "torch"
        if config.device.startswith("cuda"):
            config.device = f"cuda:{place.local_rank}"
    config.device = resolve_device(config.device)
    engine_name = choose_engine(config)  # every check before the first write
    if place.main:
        _start_run_dir(run_dir, config, resumed=resume is not None)

    set_determinism(config.seed, config.threads)
    if config.train_file:
        x_train, y_train = load_training_file(config.train_file, config.train_subset)
    else:
        x_train, y_train = load_mnist("train", config.data_dir, config.dataset, config.train_subset, quiet=not progress)
    x_test, y_test = load_mnist("test", config.data_dir, config.dataset, config.test_subset, quiet=not progress)
    if config.device.startswith("cuda"):  # keep the data beside the model: no copy per batch
        x_train, y_train = x_train.to(config.device), y_train.to(config.device)

    model = build_model(config.model)
    payload = None
    if resume is not None and (run_dir / "checkpoint.pt").exists():
        payload = read_checkpoint(run_dir / "checkpoint.pt")
        if not isinstance(payload.get("epoch"), int) or not isinstance(payload.get("history"), list):
            raise Lenet5Error(f"{run_dir / 'checkpoint.pt'}: not a training checkpoint (no epoch and history)")
        model = model_from_checkpoint(payload, str(run_dir / "checkpoint.pt"))
        start_epoch, history = payload["epoch"], list(payload["history"])
        log(f"resuming {run_dir} after pass {start_epoch}")
    model.to(config.device)
    if not config.model.paper_family and config.device == "cpu":
        # their convolutions run 1.2-1.7x faster on the CPU in this layout (scripts/bench_modern.py, BENCHMARKS.md)
        model.to(memory_format=torch.channels_last)
    engine = None
    if engine_name == "numba":
        from .engine import NumbaEngine

        engine = NumbaEngine(model, config.loss, config.map_j, threads=config.threads)
        model.use_engine()  # and the per-pass evaluations run in it too (same predictions; tests/test_engine.py)
    ddp = None
    if place.world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[place.local_rank] if config.device.startswith("cuda") else None
        )
    opt = make_optimizer(model, config)
    if payload is not None and payload.get("optimizer"):  # a modern optimizer's moments (SDLM keeps none)
        opt.load_state_dict(payload["optimizer"])
    criterion = loss_fn(config.loss, config.map_j, config.label_smoothing)
    distorted = DistortedSet(x_train, config.seed) if config.distort else None
    n = len(x_train)
    steps_per_pass = math.ceil(n / config.batch_size)
    lr_at = lr_schedule(config, steps_per_pass * config.epochs)
    if start_epoch == 0:
        what = f"SDLM, loss {config.loss}" if config.optimizer == "sdlm" else f"{config.optimizer}, loss {config.loss}"
        extras = [x for x, on in [("distortions", config.distort), ("augmentation", config.augment)] if on]
        extras += [f"rotations +-{config.rotate} deg"] if config.rotate else []
        extras += [f"elastic {config.elastic}"] if config.elastic else []
        extras += [f"noise {config.noise}"] if config.noise else []
        log(
            f"run {run_dir}: {config.model.arch} on {config.dataset}, {n} training patterns, {config.epochs} passes, "
            f"batch {config.batch_size}, {what}, engine {engine_name}" + "".join(f", {x}" for x in extras)
        )

    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout: a resumed pass draws what it drew
        order = rng.permutation(n)
        versions = distorted.versions_for_pass(rng)[order] if distorted is not None else None
        patterns = PassPatterns(x_train, y_train, order, versions, distorted, config.augment, config.rotate,
                                config.elastic, config.noise, rng)  # fmt: skip
        h, steps = [], []
        if config.optimizer == "sdlm":
            eta = config.eta_for(epoch)
            for group in opt.param_groups:
                group["lr"] = eta
            # h_kk re-estimated on the first patterns of this pass's random order (distorted ones included),
            # then fixed for the pass. DEVIATION(D8): the paper does not say which 500 patterns.
            x_h, _ = patterns.get(np.arange(min(config.hessian_samples, n)))
            opt.estimate_hessian(model, x_h.to(config.device))
            h = [opt.state[p]["hessian"] for p in model.parameters()]
            steps = opt.step_sizes()
        else:
            eta = lr_at(epoch * steps_per_pass)
        with tqdm(
            total=n,
            unit="pat",
            desc=f"pass {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
            file=sys.stderr,
            mininterval=0.5,
        ) as bar:
            if engine is not None:
                result = _numba_pass(engine, opt, patterns, config, bar)
            else:
                result = _torch_pass(
                    model, opt, criterion, patterns, config, bar, ddp, place, lr_at, epoch * steps_per_pass
                )
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(result.loss) or not all(torch.isfinite(p).all() for p in model.parameters()):
            raise Lenet5Error(
                f"training diverged in pass {epoch + 1} (loss {result.loss}); "
                f"the last good checkpoint is kept in {run_dir}"
            )
        if not place.main:  # rank 0 evaluates and writes; the others wait for it
            _barrier(place)
            continue
        test = evaluate(model, x_test, y_test, device=config.device)
        train_eval = evaluate(model, x_train, y_train, device=config.device) if config.train_eval else None
        metrics = {
            "epoch": epoch + 1,
            "eta": eta,
            "loss": result.loss / result.patterns,
            "running_train_error": 100.0 * result.errors / result.patterns,
            "train_error": train_eval["error_rate"] if train_eval else None,
            "test_error": test["error_rate"],
            "test_misses": test["misses"],
            "h_min": min(float(t.min()) for t in h) if h else None,
            "h_max": max(float(t.max()) for t in h) if h else None,
            "step_min": min(float(s.min()) for s in steps) if steps else None,
            "step_max": max(float(s.max()) for s in steps) if steps else None,
            "train_seconds": train_seconds,
            "seconds": time.perf_counter() - t0,
            "patterns_per_second": result.patterns / train_seconds,
            "engine": engine_name,
        }
        history.append(metrics)
        save_checkpoint(
            run_dir / "checkpoint.pt",
            model,
            epoch=epoch + 1,
            history=history,
            train_config=config.to_dict(),
            optimizer=None if config.optimizer == "sdlm" else opt.state_dict(),
        )
        atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in history))
        log(format_pass(metrics, config.epochs))
        _barrier(place)

    if place.world > 1:
        import torch.distributed as dist

        del ddp  # its reducer holds the process group: release it before the group goes
        dist.destroy_process_group()
    if not place.main:
        return {"run_dir": str(run_dir), "history": history, "test": None, "engine": engine_name}
    final = evaluate(model, x_test, y_test, device=config.device)
    save_checkpoint(run_dir / "weights.pt", model, history=history, train_config=config.to_dict(), test=final)
    summary = {k: final[k] for k in ("error_rate", "misses", "n", "per_class_error", "misclassified", "confusion")}
    atomic_write_text(run_dir / "test.json", json.dumps(summary) + "\n")
    log(paper_comparison(history, config))
    return {"run_dir": str(run_dir), "history": history, "test": final, "engine": engine_name}
