"""The datasets by name: each entry gives its image shape, classes, splits and where it is read.

MNIST and Fashion-MNIST are entries (IDX files in a folder, else the TFDS builders
`mnist_idx` / `fashion_mnist_idx`). With `data.source=tfds`, any TFDS image classification
dataset not registered here is described from its builder's metadata (`source.dataset_of`).
`register_dataset` adds an entry, e.g. one with its own `load` function for arrays in memory.
This module reads no data and imports no TFDS (`source.dataset_of` looks unregistered names up).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_jax.data import idx
from cnn_jax.errors import on_command_line, setting

Pair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Dataset:
    """A dataset's entry.

    image_shape: (H, W, C) of every image (uint8); num_classes: labels are 0..num_classes-1.
    splits: images per split ("train", "test", optionally "validation"); empty when not known
    before the data is read. tfds_name: the TFDS builder serving it under data.source=tfds.
    idx_md5: content md5s of its four IDX files (None: no IDX source); dir_env / default_dir:
    where its IDX folder is when DataConfig.dir is None. load: a function returning
    (train, test, validation or None) as (images, labels) pairs, instead of IDX or TFDS.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    splits: Mapping[str, int] = field(default_factory=dict)
    tfds_name: str | None = None
    idx_md5: Mapping[str, str] | None = None
    dir_env: str | None = None
    default_dir: str | None = None
    label_names: tuple[str, ...] | None = None
    load: Callable[[], tuple[Pair, Pair, Pair | None]] | None = None

    @property
    def own_validation(self) -> bool:
        """Whether the dataset has a validation split of its own."""
        return "validation" in self.splits


FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # fmt: skip

DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        "mnist", (28, 28, 1), 10, {"train": 60_000, "test": 10_000}, "mnist_idx",
        idx.MD5["mnist"], "CNN_JAX_MNIST_DIR", "../shared/data/mnist",
    ),
    "fashion_mnist": Dataset(
        "fashion_mnist", (28, 28, 1), 10, {"train": 60_000, "test": 10_000},
        "fashion_mnist_idx", idx.MD5["fashion_mnist"], "CNN_JAX_FASHION_MNIST_DIR",
        "/usr/share/datasets/fashion-mnist", FASHION_NAMES,
    ),
}  # fmt: skip


def register_dataset(entry: Dataset) -> None:
    """Make `entry` available as data.name=entry.name."""
    DATASETS[entry.name] = entry


def idx_dir(entry: Dataset, configured: str | None) -> str | None:
    """The folder searched for IDX files: the configured one, else $dir_env, else the default."""
    if configured is not None:
        return configured
    if entry.dir_env and os.environ.get(entry.dir_env):
        return os.environ[entry.dir_env]
    return entry.default_dir


def name_error(name: str, source: str) -> str | None:
    """Why `name` names no dataset (one line), or None: a registered name, or under
    data.source=tfds any name (its builder is looked up when the data is described)."""
    if name in DATASETS or (source == "tfds" and isinstance(name, str) and name):
        return None
    tfds = "data=tfds" if on_command_line() else setting("data.source", "tfds")
    return (f"data.name={name!r} is not one of {', '.join(DATASETS)}; any TFDS image "
            f"classification dataset loads by name with {tfds}")


def folder(cfg: Any) -> str | None:
    """The folder searched for the IDX files of `cfg` (a DataConfig): `idx_dir` of its entry."""
    entry = DATASETS.get(cfg.name)
    return idx_dir(entry, cfg.dir) if entry else cfg.dir
