"""A dataset as train / val / test numpy arrays: read (IDX, TFDS or an entry's own loader),
split by `splits.split`, limited and optionally expanded."""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnn_jax.atomic import write_atomic
from cnn_jax.data import idx, registry, source
from cnn_jax.data.splits import Splits, split

if TYPE_CHECKING:  # cnn_jax.config imports jax; the data layer does not need it at run time
    from cnn_jax.config import DataConfig

CACHE_VERSION = 1


def expand_shifts(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nielsen's expansion: each image then its 1-px shifts up, down, left, right (5x, zero-filled).

    Output row 5*i + k is image i with k = 0 original, 1 up, 2 down, 3 left, 4 right, where
    "up" moves the content up one pixel (the bottom row becomes zero), and so on. Works on
    (N, H, W) or (N, H, W, C) arrays; labels are repeated to match.
    """
    x = np.asarray(x)
    out = np.zeros((x.shape[0], 5, *x.shape[1:]), dtype=x.dtype)
    out[:, 0] = x
    out[:, 1, :-1] = x[:, 1:]  # up
    out[:, 2, 1:] = x[:, :-1]  # down
    out[:, 3, :, :-1] = x[:, :, 1:]  # left
    out[:, 4, :, 1:] = x[:, :, :-1]  # right
    return out.reshape(-1, *x.shape[1:]), np.repeat(np.asarray(y), 5)


def default_cache_dir() -> Path:
    """$CNN_JAX_DATA_CACHE, else $XDG_CACHE_HOME/cnn_jax/data, else ~/.cache/cnn_jax/data."""
    if os.environ.get("CNN_JAX_DATA_CACHE"):
        return Path(os.environ["CNN_JAX_DATA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnn_jax" / "data"


def _cache_key(name: str, paths: Mapping[str, Path], md5s: Mapping[str, str] | None) -> str:
    stats = {role: [str(p), p.stat().st_size, p.stat().st_mtime_ns] for role, p in paths.items()}
    blob = json.dumps([CACHE_VERSION, name, dict(md5s or {}), stats], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _save_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def load_idx_arrays(
    name: str,
    directory: str | os.PathLike,
    md5s: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> dict[str, np.ndarray]:
    """The four verified arrays of a dataset folder, through an .npz cache keyed by md5s + stats."""
    entry = registry.DATASETS.get(name)
    md5s = (entry.idx_md5 if entry else None) if md5s is None else md5s
    paths = idx.find_files(directory)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = cache / f"{name}-{_cache_key(name, paths, md5s)}.npz"
    if use_cache and cache_file.is_file():
        try:
            with np.load(cache_file) as z:
                return {role: z[role] for role in idx.FILES}
        except Exception:  # a damaged cache file is rebuilt, never trusted
            pass
    hw = entry.image_shape[:2] if entry else None
    arrays = idx.load_idx_dir(directory, md5s, hw, entry.num_classes if entry else None)
    if use_cache:
        try:
            _save_atomic(cache_file, arrays)
        except OSError as err:
            warnings.warn(f"cannot write data cache {cache_file}: {err}", stacklevel=2)
    return arrays


def _nhwc(x: np.ndarray) -> np.ndarray:
    x = x.reshape(*x.shape[:3], 1) if x.ndim == 3 else x
    return x if x.flags.writeable else x.copy()  # same on cold (frombuffer) and warm loads


def _int32(y: np.ndarray) -> np.ndarray:
    return np.asarray(y).astype(np.int32)


def finish(splits: Splits, expand: bool = False, train_limit: int | None = None,
           val_limit: int | None = None, test_limit: int | None = None) -> Splits:
    """Apply train_limit (first N), then expansion to the train split; keep the first
    val_limit / test_limit images of the validation / test split; fix dtypes and NHWC."""
    tx, ty = splits.train_x[:train_limit], splits.train_y[:train_limit]
    if expand:
        tx, ty = expand_shifts(_nhwc(tx), ty)
    return Splits(
        _nhwc(tx), _int32(ty),
        _nhwc(splits.val_x[:val_limit]), _int32(splits.val_y[:val_limit]),
        _nhwc(splits.test_x[:test_limit]), _int32(splits.test_y[:test_limit]),
    )  # fmt: skip


def load_splits(cfg: DataConfig, cache_dir: str | os.PathLike | None = None) -> Splits:
    """Load the dataset `cfg` (a DataConfig) names as train/val/test numpy arrays.

    `cache_dir` is where the IDX source keeps its parsed arrays (default: `default_cache_dir()`).
    """
    entry = source.dataset_of(cfg.name, cfg.source, cfg.data_dir)
    chosen = source.choose(cfg)
    source.check_options(cfg, chosen)
    if chosen == "own":
        train, test, validation = entry.load()
        splits = split(train, test, cfg.protocol, validation)
    elif chosen == "idx":
        arrays = load_idx_arrays(cfg.name, registry.folder(cfg), cache_dir=cache_dir)
        splits = split((arrays["train_images"], arrays["train_labels"]),
                       (arrays["test_images"], arrays["test_labels"]), cfg.protocol)
    else:
        splits = source.load_tfds(cfg, auto=cfg.source == "auto")
    return finish(splits, cfg.expand, cfg.train_limit, cfg.val_limit, cfg.test_limit)
