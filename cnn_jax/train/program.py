"""build(cfg, splits) -> Program: a config's compiled epoch and evaluation programs over its
seeds, its data on the device(s) and its fresh state.

The pieces live by concern: `seeds` (each seed's key; vmapped or looped seeds), `programs` (the
epoch as one compiled `lax.fori_loop` over the minibatches, run in equal chunks; the
evaluation), `parallel` (minibatches optionally sharded over devices). Here they are put
together.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.config import Config, check_images_fit
from cnn_jax.models.forward import init_params
from cnn_jax.models.registry import make_model
from cnn_jax.protocol import seeds_of
from cnn_jax.train.optim import make_optimizer
from cnn_jax.train.parallel import batch_axis_sharding, data_mesh, replicate
from cnn_jax.train.programs import (
    EPOCH_CHUNKS,
    epoch_batches,
    epoch_chunks,
    make_evaluate,
    make_train_chunk,
    make_train_epoch,
    minibatches_per_epoch,
)
from cnn_jax.train.seeds import (
    compile_one_seed,
    compile_over_seeds,
    concat_seeds,
    concurrent_seeds,
    map_seeds,
    resolve_seed_batching,
    seed_keys,
    seed_slice,
)
from cnn_jax.train.state import Progress, TrainState, create_state
from cnn_jax.train.step import make_eval_step, make_train_step


def _state_init(model: nn.Module, tx, input_shape: Sequence[int] | None = None,
                ) -> Callable[[jax.Array], TrainState]:
    make = lambda key: create_state(init_params(model, jax.random.fold_in(key, 0), input_shape),
                                    tx)
    return jax.jit(jax.vmap(make))


def init_states(model: nn.Module, tx, seeds: Sequence[int],
                input_shape: Sequence[int] | None = None) -> TrainState:
    """Fresh TrainStates for every seed, stacked along a leading seed axis."""
    return _state_init(model, tx, input_shape)(seed_keys(seeds))


@dataclass(frozen=True)
class Program:
    """A config's compiled programs over its seeds, with the data already on the device(s).

    epoch(state, e, on_chunk=None) -> (state, mean loss per seed) trains epoch e (counted from
    1, as the history counts them; donating
    `state`) as `chunks` calls of one compiled program, calling on_chunk(images) after
    each; train_epoch is the uncompiled one-seed epoch it runs; evaluate(params) -> {"val":
    accuracy per seed, "test": ...}; fresh() -> the Progress of no epoch done; place(progress) puts
    one on the devices.
    """

    cfg: Config
    model: nn.Module
    seeds: list[int]
    num_train: int
    train_epoch: Callable[..., tuple[TrainState, jax.Array]]
    epoch: Callable[..., tuple[TrainState, jax.Array]]
    evaluate: Callable[[Any], dict[str, jax.Array]]
    fresh: Callable[[], Progress]
    place: Callable[[Progress], Progress]
    compile_seconds: float
    batching: str = "loop"  # how the seeds run: "vmap" or "loop" (train.seed_batching resolved)


def same_images(splits: Any, a: str, b: str) -> bool:
    """Whether splits `a` and `b` hold the same images and labels (one evaluation serves both)."""
    return all(np.array_equal(getattr(splits, f"{a}_{k}"), getattr(splits, f"{b}_{k}"))
               for k in ("x", "y"))


def build(cfg: Config, splits: Any, chunks: int = EPOCH_CHUNKS) -> Program:
    """Put `splits` on the device(s) and compile `cfg`'s epoch and evaluations for its seeds.

    An epoch runs as `chunks` calls of one compiled program (1: the whole epoch in one call).
    """
    seeds = seeds_of(cfg)
    check_images_fit(cfg, splits.train_x.shape[1:])
    model = make_model(cfg.model)
    mesh = data_mesh(cfg.train.devices) if cfg.train.devices > 1 else None
    put = (lambda a: replicate(jnp.asarray(a), mesh)) if mesh else jnp.asarray
    sharded = batch_axis_sharding(mesh) if mesh else None
    x_train, y_train = put(splits.train_x), put(splits.train_y)
    # data.protocol=full validates on the test set: evaluate it once, report it as both
    names = ("val",) if same_images(splits, "val", "test") else ("val", "test")
    evals = {name: (put(getattr(splits, f"{name}_x")), put(getattr(splits, f"{name}_y")))
             for name in names}
    n = x_train.shape[0]
    tx = make_optimizer(cfg.optimizer, minibatches_per_epoch(n, cfg.train.batch_size),
                        cfg.train.epochs)
    train_step = make_train_step(model, tx, cfg.optimizer.label_smoothing)
    train_epoch = make_train_epoch(train_step, n, cfg.train.batch_size, cfg.train.shuffle, sharded)
    evaluates = {}
    for name, (_, labels) in evals.items():
        eval_batch = min(cfg.train.eval_batch_size, len(labels))
        split = sharded if mesh and eval_batch % cfg.train.devices == 0 else None
        evaluates[name] = make_evaluate(make_eval_step(model), len(labels), eval_batch, split)

    init = _state_init(model, tx, splits.train_x.shape[1:])
    place = ((lambda p: Progress(replicate(p.state, mesh), replicate(p.best_params, mesh),
                                 p.epochs_done, p.history)) if mesh else (lambda p: p))

    def fresh() -> Progress:
        state = init(seed_keys(seeds))
        return place(Progress(state, jax.tree_util.tree_map(jnp.copy, state.params), 0, []))

    state = fresh().state
    epoch_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(seed_keys(seeds))
    t0 = time.perf_counter()
    batching = resolve_seed_batching(cfg.train.seed_batching)
    workers = concurrent_seeds(cfg.train.concurrent_seeds, len(seeds), cfg.train.devices)
    steps = n // cfg.train.batch_size
    parts = [tuple(jnp.asarray(v, jnp.int32) for v in c) for c in epoch_chunks(steps, chunks)]
    batches = jax.jit(jax.vmap(functools.partial(
        epoch_batches, n=n, batch_size=cfg.train.batch_size, shuffle=cfg.train.shuffle)))
    # the epoch's chunks, seeds stacked (vmap), or each seed's chunks in turn by one program
    looped = batching == "loop" and len(seeds) > 1
    chunk_args = (state, epoch_keys, x_train, y_train, batches(epoch_keys), *parts[0])
    chunk_axes = (0, 0, None, None, 0, None, None)
    train_chunk = make_train_chunk(train_step, sharded)
    if looped:
        compiled = compile_one_seed(train_chunk, chunk_args, chunk_axes, donate=True)
    else:
        compiled = compile_over_seeds(train_chunk, chunk_args, chunk_axes, batching, donate=True)
    eval_compiled = {k: compile_over_seeds(f, (state.params, *evals[k]), (0, None, None),
                                           batching, workers=workers)
                     for k, f in evaluates.items()}
    compile_seconds = time.perf_counter() - t0

    def run_chunks(state: TrainState, keys: jax.Array, order: jax.Array,
               on_chunk: Callable[[int], None] | None,
               stop: threading.Event | None = None) -> tuple[TrainState, jax.Array]:
        """One epoch of `state`'s seeds: `compiled` over the chunks, the losses summed; ends
        early with an error once `stop` is set (another seed failed, or Ctrl-C)."""
        total = 0.0
        for start, count in parts:
            if stop is not None and stop.is_set():
                raise RuntimeError("epoch stopped: another seed failed or the run was interrupted")
            state, part = compiled(state, keys, x_train, y_train, order, start, count)
            total = total + part
            if on_chunk is not None:
                jax.block_until_ready(part)
                on_chunk(int(count) * cfg.train.batch_size * len(keys))
        return state, total

    def epoch(state: TrainState, e: int,
              on_chunk: Callable[[int], None] | None = None) -> tuple[TrainState, jax.Array]:
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(epoch_keys, e - 1)  # its index
        order = batches(keys)
        if not looped:
            state, total = run_chunks(state, keys, order, on_chunk)
            return state, total / steps
        lock, stop = threading.Lock(), threading.Event()

        def report(images: int) -> None:  # the seeds' threads report their chunks one at a time
            with lock:
                on_chunk(images)

        state, total = concat_seeds(map_seeds(
            lambda i: run_chunks(*seed_slice(i, (state, keys, order), (0, 0, 0)),
                             report if on_chunk else None, stop), len(seeds), workers, stop))
        return state, total / steps

    def evaluate(params: Any) -> dict[str, jax.Array]:
        accs = {k: f(params, *evals[k])[0] for k, f in eval_compiled.items()}
        return {"val": accs["val"], "test": accs.get("test", accs["val"])}

    return Program(cfg, model, seeds, n, train_epoch, epoch, evaluate, fresh, place,
                   compile_seconds, batching)
