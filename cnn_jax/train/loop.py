"""The training loop: epochs of a built Program, evaluation, best-validation params, records.

`fit(cfg, splits)` is `run_epochs(build(cfg, splits))`. To resume, pass the saved Progress as
`start`; `on_epoch(progress)` is called after every epoch (records, checkpoints, loggers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.config import Config
from cnn_jax.protocol import (
    best_val_so_far,
    diverged_seeds,
    exploded,
    improved,
    per_seed_summary,
)
from cnn_jax.train.program import Program, build
from cnn_jax.train.state import Progress
from cnn_jax.train.watch import EpochProgress


@jax.jit
def _keep_best(improved: jax.Array, new: Any, old: Any) -> Any:
    pick = lambda a, b: jnp.where(improved.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
    return jax.tree_util.tree_map(pick, new, old)


@dataclass(repr=False)
class FitResult:
    """Per-seed outcomes, per-epoch history, final progress and timings.

    Every array in `progress` (state, best_params) has a leading seed axis: index i holds the
    network of seed `per_seed[i]["seed"]`; `params_of(seed)` takes one seed's best-validation
    parameters out.
    """

    per_seed: list[dict[str, Any]]
    history: list[dict[str, Any]]
    progress: Progress
    compile_seconds: float
    train_seconds: float
    images_per_sec: float

    def params_of(self, seed: int) -> Any:
        """Seed `seed`'s best-validation parameters (the seed axis removed)."""
        seeds = [row["seed"] for row in self.per_seed]
        if seed not in seeds:
            raise ValueError(f"seed={seed!r} is not one of this fit's seeds "
                             f"{', '.join(map(str, seeds))}")
        i = seeds.index(seed)
        return jax.tree_util.tree_map(lambda a: a[i], self.progress.best_params)

    def __repr__(self) -> str:
        accs = ", ".join(f"{row['seed']}: {row['test_acc']:.4f}" for row in self.per_seed)
        return (f"FitResult(epochs={len(self.history)}, test_acc at best val {{{accs}}}, "
                f"compile {self.compile_seconds:.1f} s, train {self.train_seconds:.1f} s)")


def run_epochs(program: Program, start: Progress | None = None,
               on_epoch: Callable[[Progress], None] | None = None) -> FitResult:
    """Train from `start` (default: fresh) to `train.epochs`, evaluating after every epoch.

    A seed whose loss goes non-finite is marked diverged (NaN accuracies from then on); the
    loop stops early when every seed has diverged.
    """
    cfg = program.cfg
    progress = program.place(start) if start is not None else program.fresh()
    first_epoch = progress.next_epoch
    best_val = best_val_so_far(progress.history, len(program.seeds))
    diverged = diverged_seeds(progress.history, len(program.seeds))  # stays so on a resume
    train_seconds = 0.0
    epoch_images = (program.num_train // cfg.train.batch_size) * cfg.train.batch_size
    for epoch in range(progress.next_epoch, cfg.train.epochs):
        if diverged.all():
            break
        t = time.perf_counter()
        watch = EpochProgress(epoch + 1, cfg.train.epochs, epoch_images * len(program.seeds),
                              enabled=cfg.train.progress)
        try:
            state, loss = program.epoch(progress.state, epoch,
                                        watch.advance if cfg.train.progress else None)
        finally:
            watch.close()
        accs = program.evaluate(state.params)
        loss, val_acc, test_acc = (np.asarray(a, np.float64)
                                   for a in (loss, accs["val"], accs["test"]))
        seconds = time.perf_counter() - t
        train_seconds += seconds
        diverged |= exploded(loss, cfg.train.max_loss)
        val_acc = np.where(diverged, np.nan, val_acc)
        test_acc = np.where(diverged, np.nan, test_acc)
        better = improved(best_val, val_acc)
        best_val = np.where(better, val_acc, best_val)
        best_params = _keep_best(jnp.asarray(better), state.params, progress.best_params)
        record = {"epoch": epoch + 1, "train_loss": loss.tolist(), "val_acc": val_acc.tolist(),
                  "test_acc": test_acc.tolist(), "seconds": seconds}
        progress = Progress(state, best_params, epoch + 1, [*progress.history, record])
        if on_epoch is not None:
            on_epoch(progress)

    images = epoch_images * len(program.seeds) * max(progress.next_epoch - first_epoch, 0)
    return FitResult(
        per_seed=per_seed_summary(progress.history, program.seeds),
        history=progress.history,
        progress=progress,
        compile_seconds=program.compile_seconds,
        train_seconds=train_seconds,
        images_per_sec=images / train_seconds if train_seconds else 0.0,
    )


def fit(cfg: Config, splits: Any, *, start: Progress | None = None,
        on_epoch: Callable[[Progress], None] | None = None) -> FitResult:
    """Train `train.seeds` networks of `cfg.model` together on `splits`; evaluate every epoch."""
    return run_epochs(build(cfg, splits), start, on_epoch)
