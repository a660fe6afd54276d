"""Shared fixtures. Real data only: MNIST comes through lenet5's own acquisition (cached between runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The dataset cache that the tests share: $LENET5_DATA or lenet5's default."""
    from lenet5.data import default_data_dir

    return default_data_dir()


@pytest.fixture(scope="session")
def mnist(data_dir):
    """Real MNIST, as the paper's tensors: (x_train, y_train, x_test, y_test)."""
    from lenet5.data import load_mnist

    x_train, y_train = load_mnist("train", data_dir)
    x_test, y_test = load_mnist("test", data_dir)
    return x_train, y_train, x_test, y_test


def run_cli(*args: str, timeout: float = 600, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m lenet5 ARGS`` as a user would, capturing its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lenet5", *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd
    )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
