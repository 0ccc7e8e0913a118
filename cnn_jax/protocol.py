"""Nielsen's protocol, in one place: the seeds a run trains, and per seed the test accuracy at
the epoch of best validation accuracy (the first such epoch on ties; a diverged epoch never).

Plain Python and NumPy: the training loop, the run records, the figures and the results tables
read runs through these functions, and none of them needs JAX for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

History = Sequence[Mapping[str, Any]]


def seeds_of(cfg: Any) -> list[int]:
    """The seeds a run trains: seed, seed+1, ..., seed+train.seeds-1 (a Config or its dict)."""
    seed, count = ((cfg["seed"], cfg["train"]["seeds"]) if isinstance(cfg, Mapping)
                   else (cfg.seed, cfg.train.seeds))
    return list(range(seed, seed + count))


def improved(best_val: np.ndarray, val_acc: Sequence[float | None]) -> np.ndarray:
    """Per seed: is this epoch's validation accuracy a new best (strictly; NaN or None never)?"""
    return np.asarray(val_acc, float) > best_val


def best_val_so_far(history: History, num_seeds: int) -> np.ndarray:
    """Per seed, the best validation accuracy in `history` (-1 before any epoch)."""
    best = np.full(num_seeds, -1.0)
    for h in history:
        best = np.where(improved(best, h["val_acc"]), np.asarray(h["val_acc"], float), best)
    return best


def diverged_seeds(history: History, num_seeds: int) -> np.ndarray:
    """Per seed: has it diverged in `history` (a non-finite or missing validation accuracy)?"""
    out = np.zeros(num_seeds, bool)
    for h in history:
        out |= ~np.isfinite(np.asarray(h["val_acc"], np.float64))
    return out


def _val_of(record: Mapping[str, Any], i: int) -> float | None:
    """Seed i's validation accuracy in one epoch's record (None: missing or non-finite)."""
    values = record.get("val_acc")
    value = values[i] if isinstance(values, Sequence) and i < len(values) else None
    return float(value) if isinstance(value, Real) and math.isfinite(value) else None


def slope_window(epochs: int) -> int:
    """How many final epochs a budget's end slope is fitted over: the last quarter, at least 3."""
    return max(3, math.ceil(epochs / 4))


def last_epochs_val_slope(history: History, num_seeds: int) -> list[float | None]:
    """Per seed, the least-squares slope of its validation accuracy per epoch over the last
    `slope_window(len(history))` epochs of `history` (positive: still rising when the budget
    ended; None: fewer epochs than that, or a missing or non-finite value there); float32 noise
    below 1e-6 reads as 0."""
    window = slope_window(len(history))
    if len(history) < window:
        return [None] * num_seeds
    x = np.arange(window) - (window - 1) / 2  # centred epochs: the slope is x.y / x.x
    out: list[float | None] = []
    for i in range(num_seeds):
        ys = [_val_of(record, i) for record in history[-window:]]
        out.append(None if None in ys else round(float(x @ np.asarray(ys)) / float(x @ x), 6) + 0.0)
    return out


def exploded(loss: Any, max_loss: float | None = None) -> np.ndarray:
    """Per seed: has the training loss diverged (not finite, or above `max_loss` when given)?"""
    loss = np.asarray(loss, np.float64)
    return ~np.isfinite(loss) | (loss > (np.inf if max_loss is None else max_loss))


def per_seed_summary(history: History, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Per seed: test accuracy at its best-validation epoch, that epoch, the last test accuracy.

    A seed whose loss went non-finite is "diverged": its best is taken over the epochs before.
    `history` is the per-epoch records (metrics.jsonl), NaN or None for a diverged seed.
    """
    finite = lambda v: v is not None and math.isfinite(v)
    out = []
    for i, seed in enumerate(seeds):
        rows = [h for h in history if finite(h["train_loss"][i]) and finite(h["val_acc"][i])]
        ok = len(rows) == len(history) and rows
        best = max(rows, key=lambda h: (h["val_acc"][i], -h["epoch"])) if rows else {}
        out.append({
            "seed": seed, "status": "ok" if ok else "diverged",
            "best_val_epoch": best.get("epoch"),
            "val_acc": best["val_acc"][i] if best else None,
            "test_acc": best["test_acc"][i] if best else None,
            "last_test_acc": history[-1]["test_acc"][i] if ok else None,
            "final_train_loss": history[-1]["train_loss"][i] if history else None,
        })
    return out


def run_summary(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A run's status and its means over the seeds that finished ok (metrics.json fields)."""
    ok = [s for s in per_seed if s["status"] == "ok"]
    mean = lambda key: float(np.mean([s[key] for s in ok])) if ok else None
    return {"status": "ok" if len(ok) == len(per_seed) else "diverged",
            "test_acc": mean("test_acc"), "val_acc": mean("val_acc"),
            "last_test_acc": mean("last_test_acc"),
            "best_val_epoch": ok[0]["best_val_epoch"] if ok else None}
