"""Nielsen's protocol, in one place: the seeds a run trains, and per seed the test accuracy at
the epoch of best validation accuracy (the first such epoch on ties; a diverged epoch never).

Plain Python and NumPy: the training loop, the run records, the figures and the results tables
all read runs through these functions, and none of them needs JAX for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

History = Sequence[Mapping[str, Any]]


def seeds_of(cfg: Any) -> list[int]:
    """The seeds a run trains: seed, seed+1, ..., seed+train.seeds-1 (a Config or its dict)."""
    if isinstance(cfg, Mapping):
        return list(range(cfg["seed"], cfg["seed"] + cfg["train"]["seeds"]))
    return list(range(cfg.seed, cfg.seed + cfg.train.seeds))


def improved(best_val: np.ndarray, val_acc: np.ndarray) -> np.ndarray:
    """Per seed: is this epoch's validation accuracy a new best (strictly; NaN never is)?"""
    return np.nan_to_num(np.asarray(val_acc, np.float64), nan=-1.0) > best_val


def best_val_so_far(history: History, num_seeds: int) -> np.ndarray:
    """Per seed, the best validation accuracy in `history` (-1 before any epoch)."""
    best = np.full(num_seeds, -1.0)
    for h in history:
        best = np.where(improved(best, _floats(h["val_acc"])), _floats(h["val_acc"]), best)
    return best


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def per_seed_summary(history: History, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Per seed: test accuracy at its best-validation epoch, that epoch, the last test accuracy.

    A seed whose loss went non-finite is "diverged": its best is taken over the epochs before.
    `history` is the per-epoch records (metrics.jsonl), NaN or None for a diverged seed.
    """
    out = []
    for i, seed in enumerate(seeds):
        rows = [h for h in history if _finite(h["train_loss"][i]) and _finite(h["val_acc"][i])]
        status = "ok" if len(rows) == len(history) and rows else "diverged"
        best = max(rows, key=lambda h: (h["val_acc"][i], -h["epoch"])) if rows else None
        out.append({
            "seed": seed,
            "status": status,
            "best_val_epoch": best["epoch"] if best else None,
            "val_acc": best["val_acc"][i] if best else None,
            "test_acc": best["test_acc"][i] if best else None,
            "last_test_acc": history[-1]["test_acc"][i] if history and status == "ok" else None,
            "final_train_loss": history[-1]["train_loss"][i] if history else None,
        })
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def run_summary(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A run's status and its means over the seeds that finished ok (metrics.json fields)."""
    ok = [s for s in per_seed if s["status"] == "ok"]
    return {
        "status": "ok" if len(ok) == len(per_seed) else "diverged",
        "test_acc": _mean([s["test_acc"] for s in ok]),
        "val_acc": _mean([s["val_acc"] for s in ok]),
        "last_test_acc": _mean([s["last_test_acc"] for s in ok]),
        "best_val_epoch": ok[0]["best_val_epoch"] if ok else None,
    }
