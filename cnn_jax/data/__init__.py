"""Datasets as numpy splits: a registry of datasets (MNIST, Fashion-MNIST, your own), read from
IDX files, through TFDS (any image classification dataset by name) or an entry's own loader."""

from cnn_jax.data.idx import DataError, load_idx_dir, read_idx, write_idx
from cnn_jax.data.pipeline import expand_shifts, load_idx_arrays, load_splits
from cnn_jax.data.registry import DATASETS, Dataset, register_dataset
from cnn_jax.data.source import dataset_of
from cnn_jax.data.splits import PROTOCOLS, Splits, split

__all__ = [
    "DATASETS",
    "PROTOCOLS",
    "DataError",
    "Dataset",
    "Splits",
    "dataset_of",
    "expand_shifts",
    "load_idx_arrays",
    "load_idx_dir",
    "load_splits",
    "read_idx",
    "register_dataset",
    "split",
    "write_idx",
]
