"""Which source serves a dataset: its entry's own loader, the IDX files in its folder, or the
TFDS builder (download).

`data.source=auto` (the default) reads the IDX files when the folder (`data.dir`, else the
entry's environment variable, else its default folder) holds them, else prepares the TFDS
builder, which downloads the official files when online; with neither, one line names the
folder searched, the four files and both remedies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnn_jax.data import idx, registry
from cnn_jax.data.registry import Dataset, folder
from cnn_jax.errors import field_name, setting

if TYPE_CHECKING:
    from cnn_jax.config import DataConfig
    from cnn_jax.data.splits import Splits

TFDS_EXTRA = "pip install 'cnn-jax[tfds]' (in a clone: uv sync --extra tfds)"


def dataset_of(name: str, source: str = "auto", data_dir: str | None = None) -> Dataset:
    """The entry of `name`; under data.source=tfds, an unregistered name's, from its TFDS
    builder's metadata (no download)."""
    error = registry.name_error(name, source)
    if error:
        raise idx.DataError(error)
    if name in registry.DATASETS:
        return registry.DATASETS[name]
    try:
        from cnn_jax.data import builders  # imports tensorflow_datasets: only when needed
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("tensorflow_datasets"):
            raise
        raise idx.DataError(f"data.name={name!r} with data.source=tfds needs TensorFlow "
                            f"Datasets: {TFDS_EXTRA}") from err
    return builders.tfds_dataset(name, data_dir)


def choose(cfg: DataConfig) -> str:
    """The source that serves `cfg`: "own" (its entry's `load`), "idx" or "tfds" (auto: idx
    when its folder holds the files)."""
    entry = registry.DATASETS.get(cfg.name)
    if entry is not None and entry.load is not None:
        return "own"
    if cfg.source == "auto":
        return "idx" if idx.has_files(folder(cfg)) else "tfds"
    return cfg.source


def check_options(cfg: DataConfig, source: str) -> None:
    """TFDS-only options (data.manual_dir, data.data_dir) given for IDX files: a one-line error."""
    if source != "idx":
        return
    for key, value in (("manual_dir", cfg.manual_dir), ("data_dir", cfg.data_dir)):
        if value is not None:
            root = Path(folder(cfg) or ".").expanduser().resolve()
            raise idx.DataError(
                f"{setting(f'data.{key}', value)} is a TFDS option, but "
                f"{setting('data.source', cfg.source)} reads the IDX files in {root} directly; "
                f"leave {field_name(f'data.{key}')} unset, or set {setting('data.source', 'tfds')}"
            )


def not_found(directory: str | None, reason: str) -> str:
    """The one-line error when neither the IDX files nor the download can serve the data."""
    root = Path(directory or ".").expanduser().resolve()
    expected = ", ".join(f"{name}[.gz]" for name in idx.FILES.values())
    return (
        f"dataset files not found in {root} (expected {expected}) and the download failed "
        f"({reason}); put the four files there or set "
        f"{setting('data.dir', '<folder holding them>')}, or run again with internet access to "
        "download them"
    )


def load_tfds(cfg: DataConfig, auto: bool) -> Splits:
    """Splits through the TFDS builder; under auto, a failure is the not-found line above."""
    try:
        from cnn_jax.data import builders  # imports tensorflow_datasets: only when needed
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("tensorflow_datasets"):
            raise
        reason = f"TensorFlow Datasets is not installed: {TFDS_EXTRA}"
        raise idx.DataError(not_found(folder(cfg), reason) if auto else
                            f"data.source=tfds needs TensorFlow Datasets: {TFDS_EXTRA}") from err
    try:
        return builders.load_tfds_splits(cfg)
    except builders.DownloadFailed as err:
        if not auto:
            raise
        raise idx.DataError(not_found(folder(cfg), err.reason)) from err
