"""The micro-benchmarks' one timing loop: best-of-repeats seconds per call of a jitted function."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax


def seconds_per_call(fn: Callable, *args, repeats: int = 7, min_seconds: float = 0.05) -> float:
    """Best (minimum) over `repeats` timings of the seconds per call of `fn(*args)`.

    The first call compiles and warms up; then as many calls as fill `min_seconds` set how many
    calls each timing averages over, so that short calls are not lost in the timer's noise."""
    jax.block_until_ready(fn(*args))
    start, calls = time.perf_counter(), 0
    while calls == 0 or time.perf_counter() - start < min_seconds:
        jax.block_until_ready(fn(*args))
        calls += 1
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best
