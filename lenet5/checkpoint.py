"""Checkpoints and weights files: the model config travels with the weights.

A file is a torch.save'd dict of plain data and tensors, loaded with ``weights_only=True`` so that a
malicious pickle cannot run code. Writes are atomic (temp file + rename): a crash or a full disk
leaves the previous file intact.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import warnings
import zipfile
from importlib import resources
from pathlib import Path

import torch

from .config import ModelConfig
from .errors import CheckpointError, Lenet5Error
from .fileio import atomic_path
from .model import LeNet5, build_model

FORMAT_VERSION = 1
PRETRAINED = {"paper": "lenet5-paper.pt", "paper-distort": "lenet5-paper-distort.pt"}


def save_checkpoint(path: str | os.PathLike, model: LeNet5, **extra) -> None:
    """Atomically write the model's weights and config, plus ``extra`` plain data (epoch, metrics...)."""
    payload = {
        "format_version": FORMAT_VERSION,
        "model_config": vars(model.config).copy(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        **extra,
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        detail = " ".join(str(e).split())[:120]
        raise CheckpointError(f"{path}: could not write ({detail}); the previous file, if any, is unchanged") from None


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict safely, refusing anything that is not one of ours with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with warnings.catch_warnings():  # torch warns about the "pickle protocol" of random bytes, on stderr
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: refused: not a plain weights file ({first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError, TypeError) as e:
        # random bytes can read as a legacy pickle whose opcodes break torch's unpickler in any of these ways
        raise CheckpointError(f"{path}: corrupt or truncated weights file ({type(e).__name__})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "format_version" not in payload:
        raise CheckpointError(f"{path}: not a lenet5 weights file (no format_version/state_dict)")
    if payload["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {payload['format_version']} is newer than this lenet5 reads "
            f"({FORMAT_VERSION}); upgrade lenet5"
        )
    return payload


def model_from_checkpoint(payload: dict, name: str = "checkpoint") -> LeNet5:
    try:
        config = ModelConfig(**payload.get("model_config", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: unusable model config ({e})") from None
    model = build_model(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{name}: weights do not fit the {config.arch} architecture ({detail})") from None
    return model


def pretrained_path(name: str) -> Path:
    if name not in PRETRAINED:
        raise CheckpointError(f"unknown pretrained model {name!r}; expected one of {', '.join(PRETRAINED)}")
    path = Path(str(resources.files("lenet5") / "weights" / PRETRAINED[name]))
    if not path.is_file():
        raise CheckpointError(f"pretrained weights {name!r} are not installed ({path} missing)")
    return path


ENGINES = ("auto", "numba", "torch")


def load_model(
    path_or_name: str | os.PathLike = "paper", device: str | torch.device = "cpu", engine: str = "auto"
) -> LeNet5:
    """A ready model in eval mode, from a weights/checkpoint file or a shipped name ('paper', 'paper-distort').

    Args:
        engine: how inference runs. 'numba': the compiled engine (engine.py; LeNet-5 on the CPU only);
            'torch': this package's PyTorch modules; 'auto': the engine where it applies and numba is installed.
            Gradients, tracing and export always run the PyTorch modules (see :class:`LeNet5`).

    Raises:
        CheckpointError: the file is missing, corrupt, unsafe, from a newer format or another architecture.
        Lenet5Error: ``engine`` is unknown, or 'numba' where the engine cannot run.
    """
    if engine not in ENGINES:
        raise Lenet5Error(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    key = str(path_or_name)
    path = pretrained_path(key) if key in PRETRAINED else Path(key)
    model = model_from_checkpoint(read_checkpoint(path), str(path)).to(device).eval()
    fits = isinstance(model, LeNet5) and model.config.arch == "lenet5" and torch.device(device).type == "cpu"
    has_numba = importlib.util.find_spec("numba") is not None
    if engine == "numba" and not (fits and has_numba):
        why = "it runs LeNet-5 on the CPU only" if has_numba else "numba is not installed (pip install 'lenet5[fast]')"
        raise Lenet5Error(f"cannot run {path} in the numba engine: {why}")
    if isinstance(model, LeNet5):
        model.use_engine(engine != "torch" and fits and has_numba)
    return model
