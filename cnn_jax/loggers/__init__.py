"""Experiment loggers behind one small writer interface (`base.Writer`).

`make_writer({"tensorboard": {...}, "mlflow": {...}}, run_dir)` builds the chosen backends;
MLflow and W&B are optional extras, imported only when chosen.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnn_jax.config import ConfigError
from cnn_jax.loggers.base import MultiWriter, Writer

# name -> (module, class, the client it imports, the extra that installs it; None: core)
LOGGERS: dict[str, tuple[str, str, str | None, str | None]] = {
    "tensorboard": ("cnn_jax.loggers.tensorboard_writer", "TensorBoardWriter", "tensorboardX",
                    "cli"),
    "csv": ("cnn_jax.loggers.csv_writer", "CSVWriter", None, None),
    "mlflow": ("cnn_jax.loggers.mlflow_writer", "MLflowWriter", "mlflow", "mlflow"),
    "wandb": ("cnn_jax.loggers.wandb_writer", "WandbWriter", "wandb", "wandb"),
}
DIR_LOGGERS = ("tensorboard", "csv")  # their `dir` option is relative to the run dir
# the sweep a run belongs to when it runs one job of a sweep on its own (`reproduce --lanes`)
SWEEP_GROUP_ENV = "CNN_JAX_SWEEP_GROUP"

__all__ = ["LOGGERS", "SWEEP_GROUP_ENV", "MultiWriter", "Writer", "make_writer", "missing_extra",
           "sweep_group"]


def sweep_group(sweep_dir: str | None) -> str | None:
    """W&B's default group for a run: the sweep dir of the multirun it is a job of, else the one
    named in $CNN_JAX_SWEEP_GROUP (a sweep's job run on its own), else none."""
    return sweep_dir or os.environ.get(SWEEP_GROUP_ENV) or None


def missing_extra(name: str, extra: str) -> str:
    """The one-line error for a chosen logger whose optional client is not installed."""
    return (f"logger={name} needs the optional dependency {extra!r}: install it with "
            f"`uv sync --inexact --extra {extra}` or `pip install 'cnn-jax[{extra}]'`")


def _build(name: str, options: Mapping[str, Any], run_dir: Path, group: str | None) -> Writer:
    module, cls_name, client, extra = LOGGERS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    options = dict(options)
    allowed = [p for p in inspect.signature(cls).parameters if p not in ("run_dir", "log_dir")]
    unknown = sorted(set(options) - set(allowed) - ({"dir"} if name in DIR_LOGGERS else set()))
    if unknown:
        raise ConfigError(f"logger.{name}.{unknown[0]} is not a known key; "
                          f"allowed: {', '.join(sorted(set(allowed) | {'dir'}))}")
    if name == "wandb" and options.get("group") is None:
        options["group"] = group
    try:
        if name in DIR_LOGGERS:
            return cls(run_dir / options.get("dir", name))
        return cls(run_dir, **options)
    except ImportError as err:
        if client and (err.name or "").split(".")[0] == client:
            raise ConfigError(missing_extra(name, extra)) from None
        raise


def make_writer(loggers: Mapping[str, Mapping[str, Any] | None] | None, run_dir: str | Path,
                group: str | None = None) -> Writer:
    """The writer for the chosen loggers (none chosen: a writer that does nothing).

    `loggers` maps a logger name to its options; `group` (e.g. the sweep dir) is W&B's default
    group. An unknown name or option, or a missing optional client, is a one-line ConfigError.
    """
    writers: list[Writer] = []
    try:
        for name, options in (loggers or {}).items():
            if name not in LOGGERS:
                raise ConfigError(f"logger={name!r} is not one of {', '.join(LOGGERS)}, none")
            writers.append(_build(name, options or {}, Path(run_dir), group))
    except BaseException:
        MultiWriter(writers).close()
        raise
    return MultiWriter(writers)
