"""Shared by the data tests: paths to the real datasets and tiny generated IDX datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cnn_jax.data import idx

ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("CNN_JAX_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
FASHION_DIR = Path(os.environ.get("CNN_JAX_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def write_idx_dir(
    folder: Path, arrays: dict[str, np.ndarray], gz: bool = True
) -> dict[str, str]:
    """Write the four role arrays as IDX files into `folder`; returns their content md5 table."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    md5s = {}
    for role, array in arrays.items():
        path = idx.write_idx(Path(folder) / (idx.FILES[role] + (".gz" if gz else "")), array)
        md5s[role] = idx.md5_hex(idx.read_bytes(path))
    return md5s


def make_dataset(folder: Path, n_train: int = 12, n_test: int = 4, gz: bool = True) -> dict:
    """Write four small random IDX files into `folder`; returns their arrays and md5 table."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return {"arrays": arrays, "md5s": write_idx_dir(folder, arrays, gz=gz)}


def use_md5s(monkeypatch, name: str, md5s: dict[str, str]) -> None:
    """Make dataset `name`'s registry entry expect these content md5s (a generated dataset)."""
    from dataclasses import replace

    from cnn_jax.data import registry

    monkeypatch.setitem(registry.DATASETS, name, replace(registry.DATASETS[name], idx_md5=md5s))
