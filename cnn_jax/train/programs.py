"""The compiled pieces of a run, before they are put together: an epoch as one `lax.fori_loop`
over its minibatches (run in equal chunks), the shuffled minibatch order, and the evaluation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding

from cnn_jax.config import ConfigError
from cnn_jax.train.parallel import constrain_batch
from cnn_jax.train.state import TrainState

EPOCH_CHUNKS = 20  # an epoch runs as this many calls of one compiled program (step progress)


def epoch_batches(key: jax.Array, n: int, batch_size: int, shuffle: bool) -> jax.Array:
    """The (n // batch_size, batch_size) image indices of the epoch that `key` orders."""
    steps = n // batch_size
    order = jax.random.permutation(jax.random.fold_in(key, 0), n) if shuffle else jnp.arange(n)
    return order[: steps * batch_size].reshape(steps, batch_size)


def make_train_chunk(train_step: Callable,
                     batch_sharding: NamedSharding | None = None) -> Callable:
    """train_chunk(state, key, x, y, batches, start, count) -> (state, summed loss): minibatches
    start .. start+count-1 of `batches` (`epoch_batches`), each step keyed by `key` and the step.

    `start` and `count` are traced, so one compiled program runs a whole epoch or any part of
    it: `Program.epoch` runs an epoch as equal chunks of it, with progress reported in between,
    and nothing recompiles; the epoch's order is computed once, outside the chunks.
    `batch_sharding` (see `cnn_jax.train.parallel`) splits every minibatch over devices.
    """

    def train_chunk(state: TrainState, key: jax.Array, x: jax.Array, y: jax.Array,
                    batches: jax.Array, start: jax.Array | int, count: jax.Array | int):
        step_key = jax.random.fold_in(key, 1)

        def body(i: jax.Array, carry: tuple[TrainState, jax.Array]):
            state, total = carry
            key_i = jax.random.fold_in(step_key, state.step)
            xb, yb = (constrain_batch(a[batches[i]], batch_sharding) for a in (x, y))
            state, metrics = train_step(state, xb, yb, key_i)
            return state, total + metrics["loss"]

        return jax.lax.fori_loop(start, start + count, body, (state, jnp.float32(0.0)))

    return train_chunk


def minibatches_per_epoch(n: int, batch_size: int) -> int:
    """n // batch_size: the whole minibatches of an epoch; a ConfigError when there is none."""
    if n // batch_size < 1:
        raise ConfigError(f"train.batch_size={batch_size} exceeds the {n} training images")
    return n // batch_size


def make_train_epoch(train_step: Callable, n: int, batch_size: int, shuffle: bool,
                     batch_sharding: NamedSharding | None = None) -> Callable:
    """train_epoch(state, key, x, y, start=0, count=all) -> (state, summed loss): minibatches
    start .. start+count-1 of the epoch that `key` orders (n // batch_size minibatches in all);
    `epoch_batches` then `make_train_chunk` in one function.
    """
    steps = minibatches_per_epoch(n, batch_size)
    train_chunk = make_train_chunk(train_step, batch_sharding)

    def train_epoch(state: TrainState, key: jax.Array, x: jax.Array, y: jax.Array,
                    start: jax.Array | int = 0, count: jax.Array | int = steps):
        batches = epoch_batches(key, n, batch_size, shuffle)
        return train_chunk(state, key, x, y, batches, start, count)

    return train_epoch


def epoch_chunks(steps: int, chunks: int = EPOCH_CHUNKS) -> list[tuple[int, int]]:
    """(start, count) of `chunks` near-equal consecutive parts of `steps` minibatches."""
    chunks = max(1, min(chunks, steps))
    bounds = [steps * i // chunks for i in range(chunks + 1)]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)]


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
