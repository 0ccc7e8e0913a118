"""The writer interface every experiment logger implements, and a fan-out over several.

A run calls `config` once with its resolved config, `epoch` after every epoch with that epoch's
record (train_loss, val_acc, test_acc: one value per seed) and the run's seeds, `summary` once
with the final metrics.json record, then `close`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cnn_jax.flat import flatten

PER_SEED = ("train_loss", "val_acc", "test_acc")


class Writer:
    """Base writer: every method does nothing; a backend overrides the ones it needs."""

    def config(self, config: Mapping[str, Any]) -> None:
        """Log the run's resolved config (a nested dict)."""

    def epoch(self, record: Mapping[str, Any], seeds: Sequence[int]) -> None:
        """Log one epoch's per-seed train loss, validation and test accuracy."""

    def summary(self, metrics: Mapping[str, Any]) -> None:
        """Log the run's final record (metrics.json)."""

    def close(self) -> None:
        """Flush and release the backend."""


class MultiWriter(Writer):
    """Every call goes to each writer in turn (`logger=[tensorboard,mlflow]`)."""

    def __init__(self, writers: Sequence[Writer]) -> None:
        self.writers = list(writers)

    def config(self, config: Mapping[str, Any]) -> None:
        for w in self.writers:
            w.config(config)

    def epoch(self, record: Mapping[str, Any], seeds: Sequence[int]) -> None:
        for w in self.writers:
            w.epoch(record, seeds)

    def summary(self, metrics: Mapping[str, Any]) -> None:
        for w in self.writers:
            w.summary(metrics)

    def close(self) -> None:
        for w in self.writers:
            w.close()


def seed_scalars(record: Mapping[str, Any], seeds: Sequence[int]) -> Iterator[tuple[str, float]]:
    """("train_loss/seed0", value), ... for one epoch record; non-finite values are skipped."""
    for name in PER_SEED:
        for seed, value in zip(seeds, record[name], strict=True):
            if value is not None and math.isfinite(value):
                yield f"{name}/seed{seed}", float(value)


def summary_scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The final record's numeric top-level fields (test_acc, val_acc, epochs, ...)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


def scalar_params(config: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """The flat config with every value a bool, int, float or str (others as their repr)."""
    return {k: v if isinstance(v, bool | int | float | str) else repr(v)
            for k, v in flatten(config).items()}
