"""Seeds: each seed's key, and how a per-seed program runs over several seeds (vmapped, or one
compiled one-seed program called seed after seed, one seed per core at once).

Each seed s owns the key PRNGKey(s): fold_in(key, 0) initialises its parameters and
fold_in(fold_in(key, 1), epoch) drives that epoch's shuffle and dropout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax.config import SEED_BATCHING
from cnn_jax.cpus import usable_cores


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
