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


@pytest.fixture(scope="session")
def mnist_test():
    """The raw MNIST test split: uint8 images (10000, 28, 28) and labels, as the image tests draw them."""
    from lenet5.data import load_split_arrays

    return load_split_arrays("mnist", "test")


@pytest.fixture(scope="session")
def model():
    """The shipped 'paper' weights, in eval mode."""
    from lenet5.checkpoint import load_model

    return load_model("paper")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Many small batches: one torch thread is faster, and several thrash on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def url():
    """A real `lenet5 serve` on a free loopback port (tests/serving.py), for the module's tests."""
    from serving import lenet5_serve

    with lenet5_serve() as base:
        yield base
