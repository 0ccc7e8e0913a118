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
from cnn_jax.train.stop import Interrupted, StopRequest
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
    eval_seconds: float = 0.0  # of train_seconds, the evaluations after each epoch

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


def _chunk_watch(watch: EpochProgress | None, stop: StopRequest | None, epoch: int,
                 epochs: int, steps: int, images_per_step: int) -> Callable[[int], None] | None:
    """The epoch's on_chunk: the progress bar moves; a stop request raises Interrupted there,
    naming the step reached."""
    if watch is None and stop is None:
        return None
    done = [0]

    def on_chunk(images: int) -> None:
        done[0] += images
        if watch is not None:
            watch.advance(images)
        if stop is not None and stop.is_set():
            raise Interrupted(stop.signum, epoch, epochs, done[0] // images_per_step, steps)

    return on_chunk


def run_epochs(program: Program, start: Progress | None = None,
               on_epoch: Callable[[Progress], None] | None = None,
               stop: StopRequest | None = None) -> FitResult:
    """Train from `start` (default: fresh) to `train.epochs`, evaluating after every epoch.

    A seed whose loss goes non-finite is marked diverged (NaN accuracies from then on); the
    loop stops early when every seed has diverged. Once `stop` is set, the epoch ends after
    its current chunk with `Interrupted` (the epochs before it are complete, and were passed to
    `on_epoch`).
    """
    cfg = program.cfg
    progress = program.place(start) if start is not None else program.fresh()
    first_done = progress.epochs_done
    best_val = best_val_so_far(progress.history, len(program.seeds))
    diverged = diverged_seeds(progress.history, len(program.seeds))  # stays so on a resume
    train_seconds = eval_seconds = 0.0
    steps = program.num_train // cfg.train.batch_size
    epoch_images = steps * cfg.train.batch_size
    for epoch in range(progress.epochs_done + 1, cfg.train.epochs + 1):  # counted from 1
        if diverged.all():
            break
        if stop is not None and stop.is_set():
            raise Interrupted(stop.signum, epoch, cfg.train.epochs, 0, steps)
        t = time.perf_counter()
        watch = EpochProgress(epoch, cfg.train.epochs, epoch_images * len(program.seeds),
                              enabled=cfg.train.progress)
        on_chunk = _chunk_watch(watch if cfg.train.progress else None, stop, epoch,
                                cfg.train.epochs, steps,
                                cfg.train.batch_size * len(program.seeds))
        try:
            state, loss = program.epoch(progress.state, epoch, on_chunk)
        finally:
            watch.close()
        jax.block_until_ready(loss)
        t_eval = time.perf_counter()
        accs = program.evaluate(state.params)
        loss, val_acc, test_acc = (np.asarray(a, np.float64)
                                   for a in (loss, accs["val"], accs["test"]))
        eval_seconds += time.perf_counter() - t_eval
        seconds = time.perf_counter() - t
        train_seconds += seconds
        diverged |= exploded(loss, cfg.train.max_loss)
        val_acc = np.where(diverged, np.nan, val_acc)
        test_acc = np.where(diverged, np.nan, test_acc)
        better = improved(best_val, val_acc)
        best_val = np.where(better, val_acc, best_val)
        best_params = _keep_best(jnp.asarray(better), state.params, progress.best_params)
        record = {"epoch": epoch, "train_loss": loss.tolist(), "val_acc": val_acc.tolist(),
                  "test_acc": test_acc.tolist(), "seconds": seconds}
        progress = Progress(state, best_params, epoch, [*progress.history, record])
        if on_epoch is not None:
            on_epoch(progress)

    images = epoch_images * len(program.seeds) * max(progress.epochs_done - first_done, 0)
    return FitResult(
        per_seed=per_seed_summary(progress.history, program.seeds),
        history=progress.history,
        progress=progress,
        compile_seconds=program.compile_seconds,
        train_seconds=train_seconds,
        images_per_sec=images / train_seconds if train_seconds else 0.0,
        eval_seconds=eval_seconds,
    )


def fit(cfg: Config, splits: Any, *, start: Progress | None = None,
        on_epoch: Callable[[Progress], None] | None = None) -> FitResult:
    """Train `train.seeds` networks of `cfg.model` together on `splits`; evaluate every epoch."""
    return run_epochs(build(cfg, splits), start, on_epoch)
