"""MNIST / Fashion-MNIST as numpy splits, read from IDX files or through a TFDS builder."""

from cnn_jax.data.idx import DataError, load_idx_dir, read_idx, write_idx
from cnn_jax.data.pipeline import Splits, expand_shifts, load_idx_arrays, load_splits

__all__ = [
    "DataError",
    "Splits",
    "expand_shifts",
    "load_idx_arrays",
    "load_idx_dir",
    "load_splits",
    "read_idx",
    "write_idx",
]
