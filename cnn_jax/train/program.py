"""build(cfg, splits): a config's compiled epoch and evaluation programs and its fresh state.

Each seed s owns the key PRNGKey(s): fold_in(key, 0) initialises its parameters and
fold_in(fold_in(key, 1), epoch) drives that epoch's shuffle and dropout. The epoch is one
compiled `lax.fori_loop` over the minibatches, run in equal chunks; the seeds are a vmapped
axis, or a loop over one compiled one-seed program (`train.seed_batching`), one seed per core at
once (`train.concurrent_seeds`); minibatches are optionally sharded over devices.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from cnn_jax.config import SEED_BATCHING, Config, ConfigError, check_images_fit
from cnn_jax.cpus import usable_cores
from cnn_jax.models.forward import init_params
from cnn_jax.models.registry import make_model
from cnn_jax.protocol import seeds_of
from cnn_jax.train.optim import make_optimizer
from cnn_jax.train.parallel import batch_axis_sharding, constrain_batch, data_mesh, replicate
from cnn_jax.train.state import Progress, TrainState, create_state
from cnn_jax.train.step import make_eval_step, make_train_step

EPOCH_CHUNKS = 20  # an epoch runs as this many calls of one compiled program (step progress)


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """One PRNG key per seed, stacked along a leading axis."""
    return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def resolve_seed_batching(batching: str, backend: str | None = None) -> str:
    """"auto" -> "loop" on CPU (XLA:CPU runs vmapped seeds slower than one after another;
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
    XLA:CPU lays out the vmapped program's weight updates badly, the plain one well
    (docs/benchmarks.md).
    """
    if num_seeds > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def one_seed(*args: Any) -> Any:
        unstacked = [jax.tree_util.tree_map(lambda a: a[0], arg) if axis == 0 else arg
                     for arg, axis in zip(args, in_axes, strict=True)]
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], fn(*unstacked))

    return one_seed


def concurrent_seeds(requested: int | None, seeds: int, devices: int = 1) -> int:
    """How many seeds a loop runs at once: `requested`, or one per usable core; at most `seeds`.
    One when each seed's program spans several devices (concurrent programs on the same devices
    could wait on each other's collectives)."""
    if devices > 1:
        return 1
    return max(1, min(seeds, requested or usable_cores()))


def seed_slice(i: int, stacked: Sequence[Any], in_axes: Sequence[int | None]) -> list[Any]:
    """Seed i of stacked arguments (a size-1 seed axis kept where in_axes is 0)."""
    return [jax.tree_util.tree_map(lambda a: a[i : i + 1], arg) if axis == 0 else arg
            for arg, axis in zip(stacked, in_axes, strict=True)]


def concat_seeds(outs: Sequence[Any]) -> Any:
    """Per-seed outputs (size-1 seed axes) stacked back along the seed axis, in order."""
    return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs)


def map_seeds(work: Callable[[int], Any], seeds: int, workers: int = 1,
              stop: threading.Event | None = None) -> list[Any]:
    """[work(0), ..., work(seeds - 1)], from `workers` threads at once when > 1: each thread
    waits for its seed's result, so that XLA:CPU runs the seeds' programs side by side.

    When one seed fails or the caller is interrupted (Ctrl-C), `stop` is set before the threads
    are waited for, so that work which checks it between its steps ends early.
    """
    if workers <= 1 or seeds <= 1:
        return [work(i) for i in range(seeds)]
    pool = ThreadPoolExecutor(min(workers, seeds))
    try:
        futures = [pool.submit(lambda i=i: jax.block_until_ready(work(i))) for i in range(seeds)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:  # the first failure, whichever seed it is, before any waiting
            if future in done and future.exception() is not None:
                future.result()
        return [f.result() for f in futures]
    except BaseException:
        if stop is not None:
            stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def compile_one_seed(fn: Callable, args: tuple[Any, ...], in_axes: tuple[int | None, ...],
                     donate: bool = False) -> Callable:
    """`fn` compiled once for one seed of stacked `args` (the size-1 seed axis kept)."""
    jitted = jax.jit(over_seeds(fn, 1, in_axes), donate_argnums=(0,) if donate else ())
    return jitted.lower(*seed_slice(0, args, in_axes)).compile()


def compile_over_seeds(fn: Callable, args: tuple[Any, ...], in_axes: tuple[int | None, ...],
                       batching: str = "vmap", donate: bool = False,
                       workers: int = 1) -> Callable:
    """Compile `fn` once for stacked `args` (seed axis 0 where in_axes is 0); returns a callable.

    batching="vmap": one program batched over the seeds (`over_seeds`). "loop": the one-seed
    program, compiled once and called for each seed (`workers` of them at once, `map_seeds`),
    outputs concatenated in seed order; on CPU this is faster than vmapping
    (docs/benchmarks.md). Each seed's result is the same either way.
    """
    seeds = len(jax.tree_util.tree_leaves(args[in_axes.index(0)])[0])
    if batching == "vmap" or seeds == 1:
        jitted = jax.jit(over_seeds(fn, seeds, in_axes), donate_argnums=(0,) if donate else ())
        return jitted.lower(*args).compile()
    if batching != "loop":
        raise ValueError(f"batching={batching!r} is not one of vmap, loop")
    one = compile_one_seed(fn, args, in_axes, donate)

    def seed_after_seed(*stacked: Any) -> Any:
        return concat_seeds(map_seeds(lambda i: one(*seed_slice(i, stacked, in_axes)), seeds,
                                      workers))

    return seed_after_seed


def _state_init(model: nn.Module, tx, input_shape: Sequence[int] | None = None,
                ) -> Callable[[jax.Array], TrainState]:
    make = lambda key: create_state(init_params(model, jax.random.fold_in(key, 0), input_shape),
                                    tx)
    return jax.jit(jax.vmap(make))


def init_states(model: nn.Module, tx, seeds: Sequence[int],
                input_shape: Sequence[int] | None = None) -> TrainState:
    """Fresh TrainStates for every seed, stacked along a leading seed axis."""
    return _state_init(model, tx, input_shape)(seed_keys(seeds))


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


@dataclass(frozen=True)
class Program:
    """A config's compiled programs over its seeds, with the data already on the device(s).

    epoch(state, e, on_chunk=None) -> (state, mean loss per seed) trains epoch e (donating
    `state`) as `chunks` calls of one compiled program, calling on_chunk(images) after
    each; train_epoch is the uncompiled one-seed epoch it runs; evaluate(params) -> {"val":
    accuracy per seed, "test": ...}; fresh() -> the epoch-0 Progress; place(progress) puts
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
                                 p.next_epoch, p.history)) if mesh else (lambda p: p))

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
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(epoch_keys, e)
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
