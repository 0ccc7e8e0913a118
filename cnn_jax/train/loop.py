"""fit(): data on the device, one jitted lax.scan per epoch, seeds as a vmapped batch axis.

Each seed s owns the key PRNGKey(s): fold_in(key, 0) initialises its parameters and
fold_in(fold_in(key, 1), epoch) drives that epoch's shuffle and dropout. Nielsen's protocol is
tracked per seed: the test accuracy at the epoch of best validation accuracy (first on ties).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from tqdm.auto import tqdm

from cnn_jax.config import SEED_BATCHING, Config
from cnn_jax.models.convnet import ConvNet, init_params
from cnn_jax.train.optim import make_optimizer
from cnn_jax.train.parallel import batch_axis_sharding, constrain_batch, data_mesh, replicate
from cnn_jax.train.state import TrainState, create_state
from cnn_jax.train.step import make_eval_step, make_train_step


@dataclass
class Progress:
    """Where a fit stands after an epoch: enough to checkpoint and resume it."""

    state: TrainState
    best_params: Any
    next_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FitResult:
    """Per-seed outcomes, per-epoch history, final progress and timings."""

    per_seed: list[dict[str, Any]]
    history: list[dict[str, Any]]
    progress: Progress
    compile_seconds: float
    train_seconds: float
    images_per_sec: float


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """One PRNG key per seed, stacked along a leading axis."""
    return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def resolve_seed_batching(batching: str, backend: str | None = None) -> str:
    """"auto" -> "loop" on CPU (XLA:CPU runs vmapped seeds slower than one after another,
    docs/benchmarks.md), "vmap" on GPU/TPU; "vmap" and "loop" pass through."""
    if batching not in SEED_BATCHING:
        raise ValueError(f"train.seed_batching={batching!r} is not one of "
                         f"{', '.join(SEED_BATCHING)}")
    if batching != "auto":
        return batching
    return "loop" if (backend or jax.default_backend()) == "cpu" else "vmap"


def over_seeds(fn: Callable, num_seeds: int, in_axes: tuple[int | None, ...]) -> Callable:
    """`jax.vmap(fn, in_axes)`, except that one seed runs unbatched (same stacked interface).

    With one seed the size-1 seed axis is sliced off the inputs and put back on the outputs:
    XLA:CPU lays out the vmapped program's weight updates badly (a transposing copy of every
    FC gradient, ~30% of a minibatch-10 step; docs/benchmarks.md), the plain one well.
    """
    if num_seeds > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def one_seed(*args: Any) -> Any:
        unstacked = [jax.tree_util.tree_map(lambda a: a[0], arg) if axis == 0 else arg
                     for arg, axis in zip(args, in_axes, strict=True)]
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], fn(*unstacked))

    return one_seed


def compile_over_seeds(fn: Callable, args: tuple[Any, ...], in_axes: tuple[int | None, ...],
                       batching: str = "vmap", donate: bool = False) -> Callable:
    """Compile `fn` once for stacked `args` (seed axis 0 where in_axes is 0); returns a callable.

    batching="vmap": one program batched over the seeds (`over_seeds`). "loop": the one-seed
    program, compiled once and called for each seed in turn, outputs concatenated; on CPU this
    is faster than vmapping (docs/benchmarks.md).
    """
    seeds = len(jax.tree_util.tree_leaves(args[in_axes.index(0)])[0])
    donate_argnums = (0,) if donate else ()
    if batching == "vmap" or seeds == 1:
        jitted = jax.jit(over_seeds(fn, seeds, in_axes), donate_argnums=donate_argnums)
        return jitted.lower(*args).compile()
    if batching != "loop":
        raise ValueError(f"batching={batching!r} is not one of vmap, loop")

    def seed(i: int, stacked: tuple[Any, ...]) -> list[Any]:
        return [jax.tree_util.tree_map(lambda a: a[i : i + 1], arg) if axis == 0 else arg
                for arg, axis in zip(stacked, in_axes, strict=True)]

    jitted = jax.jit(over_seeds(fn, 1, in_axes), donate_argnums=donate_argnums)
    one = jitted.lower(*seed(0, args)).compile()

    def seed_after_seed(*stacked: Any) -> Any:
        outs = [one(*seed(i, stacked)) for i in range(seeds)]
        return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs)

    return seed_after_seed


def init_states(model: ConvNet, tx, seeds: Sequence[int]) -> TrainState:
    """Fresh TrainStates for every seed, stacked along a leading seed axis."""
    make = lambda key: create_state(init_params(model, jax.random.fold_in(key, 0)), tx)
    return jax.jit(jax.vmap(make))(seed_keys(seeds))


def make_train_epoch(train_step: Callable, n: int, batch_size: int, shuffle: bool,
                     batch_sharding: NamedSharding | None = None) -> Callable:
    """train_epoch(state, key, x, y) -> (state, mean loss): one scan over n // batch_size steps.

    `batch_sharding` (see `cnn_jax.train.parallel`) splits every minibatch over devices.
    """
    steps = n // batch_size
    if steps < 1:
        raise ValueError(f"train.batch_size={batch_size} exceeds the {n} training images")

    def train_epoch(state: TrainState, key: jax.Array, x: jax.Array, y: jax.Array):
        order = jax.random.permutation(jax.random.fold_in(key, 0), n) if shuffle else jnp.arange(n)
        batches = order[: steps * batch_size].reshape(steps, batch_size)
        step_key = jax.random.fold_in(key, 1)

        def body(state: TrainState, idx: jax.Array):
            key_i = jax.random.fold_in(step_key, state.step)
            xb, yb = (constrain_batch(a[idx], batch_sharding) for a in (x, y))
            state, metrics = train_step(state, xb, yb, key_i)
            return state, metrics["loss"]

        state, losses = jax.lax.scan(body, state, batches)
        return state, losses.mean()

    return train_epoch


def make_evaluate(eval_step: Callable, n: int, batch_size: int,
                  batch_sharding: NamedSharding | None = None) -> Callable:
    """evaluate(params, x, y) -> (accuracy, mean loss) over all n rows, scanned in batches."""
    batch_size = min(batch_size, n)
    steps = -(-n // batch_size)

    def evaluate(params: Any, x: jax.Array, y: jax.Array):
        rows = jnp.arange(steps * batch_size).reshape(steps, batch_size)

        def body(total, idx):
            safe = jnp.minimum(idx, n - 1)
            xb, yb, wb = (constrain_batch(a, batch_sharding)
                          for a in (x[safe], y[safe], (idx < n).astype(jnp.float32)))
            m = eval_step(params, xb, yb, wb)
            return jax.tree_util.tree_map(jnp.add, total, m), None

        zero = {"correct": 0.0, "loss": 0.0, "count": 0.0}
        total, _ = jax.lax.scan(body, jax.tree_util.tree_map(jnp.float32, zero), rows)
        return total["correct"] / total["count"], total["loss"] / total["count"]

    return evaluate


def _keep_best(improved: jax.Array, new: Any, old: Any) -> Any:
    pick = lambda a, b: jnp.where(improved.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
    return jax.tree_util.tree_map(pick, new, old)


def seeds_of(cfg: Config) -> list[int]:
    """The seeds a run trains: seed, seed+1, ..., seed+train.seeds-1."""
    return [cfg.seed + i for i in range(cfg.train.seeds)]


def per_seed_summary(history: list[dict[str, Any]], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Nielsen's protocol per seed: test accuracy at the best-validation epoch, and the last."""
    out = []
    for i, seed in enumerate(seeds):
        rows = [h for h in history if np.isfinite(h["train_loss"][i])]
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


def fit(
    cfg: Config,
    splits: Any,
    *,
    restore: Callable[[Progress], Progress | None] | None = None,
    on_epoch: Callable[[Progress], None] | None = None,
) -> FitResult:
    """Train `train.seeds` networks of `cfg.model` together on `splits`; evaluate every epoch.

    `restore(fresh)` may return saved Progress to continue from; `on_epoch(progress)` is called
    after every epoch (checkpointing, logging).
    """
    seeds = seeds_of(cfg)
    model = ConvNet(cfg.model)
    mesh = data_mesh(cfg.train.devices) if cfg.train.devices > 1 else None
    put = (lambda a: replicate(jnp.asarray(a), mesh)) if mesh else jnp.asarray
    sharded = batch_axis_sharding(mesh) if mesh else None
    x_train, y_train = put(splits.train_x), put(splits.train_y)
    evals = {name: (put(getattr(splits, f"{name}_x")), put(getattr(splits, f"{name}_y")))
             for name in ("val", "test")}
    n = x_train.shape[0]
    steps = n // cfg.train.batch_size
    tx = make_optimizer(cfg.optimizer, steps, cfg.train.epochs)

    train_epoch = make_train_epoch(make_train_step(model, tx, cfg.optimizer.label_smoothing), n,
                                   cfg.train.batch_size, cfg.train.shuffle, sharded)
    evaluates = {}
    for name, (_, labels) in evals.items():
        eval_batch = min(cfg.train.eval_batch_size, len(labels))
        split = sharded if mesh and eval_batch % cfg.train.devices == 0 else None
        evaluates[name] = make_evaluate(make_eval_step(model), len(labels), eval_batch, split)
    keep_best = jax.jit(_keep_best)

    state = init_states(model, tx, seeds)
    fresh = Progress(state, jax.tree_util.tree_map(jnp.copy, state.params), 0, [])
    progress = (restore(fresh) if restore else None) or fresh
    if mesh:
        progress = Progress(replicate(progress.state, mesh), replicate(progress.best_params, mesh),
                            progress.next_epoch, progress.history)
    first_epoch = progress.next_epoch
    epoch_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(seed_keys(seeds))

    t0 = time.perf_counter()
    batching = resolve_seed_batching(cfg.train.seed_batching)
    compiled = compile_over_seeds(train_epoch, (progress.state, epoch_keys, x_train, y_train),
                                  (0, 0, None, None), batching, donate=True)
    eval_compiled = {k: compile_over_seeds(f, (progress.state.params, *evals[k]), (0, None, None),
                                           batching) for k, f in evaluates.items()}
    compile_seconds = time.perf_counter() - t0

    best_val = np.full(len(seeds), -1.0)
    for h in progress.history:
        best_val = np.maximum(best_val, np.nan_to_num(h["val_acc"], nan=-1.0))
    diverged = np.zeros(len(seeds), bool)
    train_seconds = 0.0
    bar = tqdm(range(progress.next_epoch, cfg.train.epochs), desc="epochs", unit="epoch",
               disable=not (cfg.train.progress and sys.stderr.isatty()), leave=False)
    for epoch in bar:
        t = time.perf_counter()
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(epoch_keys, epoch)
        state, loss = compiled(progress.state, keys, x_train, y_train)
        val_acc, _ = eval_compiled["val"](state.params, *evals["val"])
        test_acc, _ = eval_compiled["test"](state.params, *evals["test"])
        loss, val_acc, test_acc = (np.asarray(a, np.float64) for a in (loss, val_acc, test_acc))
        seconds = time.perf_counter() - t
        train_seconds += seconds
        diverged |= ~np.isfinite(loss)
        val_acc = np.where(diverged, np.nan, val_acc)
        test_acc = np.where(diverged, np.nan, test_acc)
        improved = np.nan_to_num(val_acc, nan=-1.0) > best_val
        best_val = np.where(improved, val_acc, best_val)
        best_params = keep_best(jnp.asarray(improved), state.params, progress.best_params)
        record = {"epoch": epoch + 1, "train_loss": loss.tolist(), "val_acc": val_acc.tolist(),
                  "test_acc": test_acc.tolist(), "seconds": seconds}
        progress = Progress(state, best_params, epoch + 1, [*progress.history, record])
        if not diverged.all():
            bar.set_postfix(loss=f"{np.nanmean(loss):.4f}", val=f"{np.nanmean(val_acc):.4f}")
        if on_epoch is not None:
            on_epoch(progress)
        if diverged.all():
            break

    epochs_run = progress.next_epoch - first_epoch
    images = n * len(seeds) * max(epochs_run, 0)
    return FitResult(
        per_seed=per_seed_summary(progress.history, seeds),
        history=progress.history,
        progress=progress,
        compile_seconds=compile_seconds,
        train_seconds=train_seconds,
        images_per_sec=images / train_seconds if train_seconds else 0.0,
    )
