"""Count XLA compilations, and keep compiled programs on disk between processes.

`count_compiles` checks that a loop compiles once however many epochs it runs; a program loaded
from the persistent cache counts as a compilation too (it is one program built for the config).
`enable_compile_cache` points JAX's persistent cache at a directory, so the jobs of a sweep, a
resumed run or a rerun of the same config load their programs instead of compiling them again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
COMPILE_CACHE_MAX_BYTES = 2**30  # a bound also turns on JAX's file lock for concurrent jobs


@dataclass
class CompileLog:
    """The programs built inside `count_compiles()`: seconds to build each (XLA compile or
    persistent-cache load), and how many of them came from the persistent cache."""

    seconds: list[float] = field(default_factory=list)
    cache_hits: int = 0

    @property
    def count(self) -> int:
        """Programs built: compiled or loaded from the persistent cache."""
        return len(self.seconds)

    @property
    def compiled(self) -> int:
        """Programs XLA compiled (not found in the persistent cache)."""
        return len(self.seconds) - self.cache_hits


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileLog]:
    """`with count_compiles() as log: ...` then `log.count` programs were built inside."""
    log = CompileLog()

    def on_duration(event: str, seconds: float, **_: object) -> None:
        if event == BACKEND_COMPILE_EVENT:
            log.seconds.append(seconds)

    def on_event(event: str, **_: object) -> None:
        if event == CACHE_HIT_EVENT:
            log.cache_hits += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    try:
        yield log
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
        jax.monitoring.unregister_event_listener(on_event)


def enable_compile_cache(path: str | os.PathLike[str] | None,
                         max_bytes: int = COMPILE_CACHE_MAX_BYTES) -> str | None:
    """Keep every compiled program under `path` (`~` expanded; None: leave JAX as it is).

    Call before the first compilation of the process. Entries are keyed by the program, JAX
    version, backend and flags; XLA:CPU refuses an entry built for another CPU and recompiles.
    Returns the directory used.
    """
    if path is None:
        return None
    directory = os.path.abspath(os.path.expanduser(os.fspath(path)))
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    return directory
