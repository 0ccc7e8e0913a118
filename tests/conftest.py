"""Shared fixtures: paths to ../shared data, a tiny split made of real MNIST images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found in {MNIST_DIR}")
    return MNIST_DIR


@pytest.fixture(scope="session")
def tiny_splits(mnist_dir):
    """600 train / 200 val / 200 test real MNIST images."""
    from cnn_jax.config import DataConfig
    from cnn_jax.data import load_splits

    s = load_splits(DataConfig(dir=str(mnist_dir)))
    return type(s)(s.train_x[:600], s.train_y[:600], s.val_x[:200], s.val_y[:200],
                   s.test_x[:200], s.test_y[:200])
