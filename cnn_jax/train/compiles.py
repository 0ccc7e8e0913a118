"""Count XLA compilations, to check that a loop compiles once however many epochs it runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclass
class CompileLog:
    """Seconds of each backend compilation seen inside `count_compiles()`."""

    seconds: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.seconds)


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileLog]:
    """`with count_compiles() as log: ...` then `log.count` XLA compilations happened inside."""
    log = CompileLog()

    def listen(event: str, seconds: float, **_: object) -> None:
        if event == BACKEND_COMPILE_EVENT:
            log.seconds.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield log
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
