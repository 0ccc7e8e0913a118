"""Stopping a run cleanly: a signal (Ctrl-C's SIGINT, SIGTERM as SLURM sends before it
preempts) asks the training loop to stop after the chunk it is computing.

The run then keeps its last completed epoch's checkpoint, records `status: interrupted` and
says where it stopped; running the same command continues it from that epoch, ending as an
uninterrupted run would. A second Ctrl-C stops at once (KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_S = 1.0  # a second Ctrl-C sooner than this after the first is taken for the same one


@dataclass
class StopRequest:
    """Set (with the signal's number) when the run should stop at its next chunk."""

    event: threading.Event = field(default_factory=threading.Event)
    signum: int = signal.SIGINT

    def set(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


class Interrupted(Exception):  # noqa: N818 (a stop asked for, not an error)
    """Training stopped on request in epoch `epoch` (1-based) after `step` of its `steps`."""

    def __init__(self, signum: int, epoch: int, epochs: int, step: int, steps: int) -> None:
        self.signum, self.epoch, self.epochs, self.step, self.steps = (
            signum, epoch, epochs, step, steps)
        super().__init__(self.line)

    @property
    def line(self) -> str:
        return (f"stopped at epoch {self.epoch}/{self.epochs} (step {self.step}/{self.steps}); "
                "run the same command to continue")

    @property
    def exit_code(self) -> int:
        """The shell's status for a process ended by the signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + int(self.signum)

    @property
    def epochs_done(self) -> int:
        return self.epoch - 1


@contextlib.contextmanager
def stop_on_signals(request: StopRequest) -> Iterator[StopRequest]:
    """While the block runs, SIGINT and SIGTERM set `request` instead of ending the process; a
    second SIGINT (a second later or more) raises KeyboardInterrupt. Outside the main thread
    (where Python cannot catch signals) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    first = [0.0]

    def handle(signum: int, _frame: object) -> None:
        # the same Ctrl-C may arrive twice (a terminal signals the whole process group, and a
        # launcher such as `uv run` forwards it): a repeat within REPEAT_S is the same one
        if request.is_set() and signum == signal.SIGINT:
            if time.monotonic() - first[0] > REPEAT_S:
                raise KeyboardInterrupt
            return
        first[0] = time.monotonic()
        request.set(signum)

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
