"""Which source serves a dataset: the IDX files in `data.dir`, or the TFDS builder (download).

`data.source=auto` (the default) reads the IDX files when `data.dir` holds them, else prepares
the TFDS builder, which downloads the official files when online; with neither, one line names
the folder searched, the four files and both remedies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnn_jax.data import idx

if TYPE_CHECKING:
    from cnn_jax.config import DataConfig
    from cnn_jax.data.pipeline import Splits

TFDS_EXTRA = "pip install 'cnn-jax[tfds]' (in a clone: uv sync --extra tfds)"


def has_idx_files(directory: str) -> bool:
    """Whether `directory` holds the four IDX files."""
    try:
        idx.find_files(directory)
    except idx.DataError:
        return False
    return True


def choose(cfg: DataConfig) -> str:
    """The source that serves `cfg`: "idx" or "tfds" (auto: idx when data.dir holds the files)."""
    if cfg.source == "auto":
        return "idx" if has_idx_files(cfg.dir) else "tfds"
    return cfg.source


def check_options(cfg: DataConfig, source: str) -> None:
    """TFDS-only options (data.manual_dir, data.data_dir) given for IDX files: a one-line error."""
    if source != "idx":
        return
    for key, value in (("manual_dir", cfg.manual_dir), ("data_dir", cfg.data_dir)):
        if value is not None:
            root = Path(cfg.dir).expanduser().resolve()
            raise idx.DataError(
                f"data.{key}={value} is a TFDS option, but data.source={cfg.source} reads the "
                f"IDX files in {root} directly; drop data.{key}, or set data.source=tfds"
            )


def not_found(directory: str, reason: str) -> str:
    """The one-line error when neither the IDX files nor the download can serve the data."""
    root = Path(directory).expanduser().resolve()
    expected = ", ".join(f"{name}[.gz]" for name in idx.FILES.values())
    return (
        f"dataset files not found in {root} (expected {expected}) and the download failed "
        f"({reason}); put the four files there or set data.dir=<folder holding them>, or run "
        "again with internet access to download them"
    )


def load_tfds(cfg: DataConfig, auto: bool) -> Splits:
    """Splits through the TFDS builder; under auto, a failure is the not-found line above."""
    try:
        from cnn_jax.data import builders  # imports tensorflow_datasets: only when needed
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("tensorflow_datasets"):
            raise
        reason = f"TensorFlow Datasets is not installed: {TFDS_EXTRA}"
        raise idx.DataError(not_found(cfg.dir, reason) if auto else
                            f"data.source=tfds needs TensorFlow Datasets: {TFDS_EXTRA}") from err
    try:
        return builders.load_tfds_splits(cfg)
    except builders.DownloadFailed as err:
        if not auto:
            raise
        raise idx.DataError(not_found(cfg.dir, err.reason)) from err
