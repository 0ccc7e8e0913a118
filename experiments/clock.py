"""Where a command's seconds go before its run starts: the interpreter, imports and the config.

`Marks` splits the time from a start (the process's, or a sweep job's) into named phases, each
`mark(phase)` adding the seconds since the previous mark to that phase; the run records them
first among its `phases` in metrics.json (`cnn_jax.experiment.run_planned`). Imports nothing
heavy: it is the first thing the command loads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def since_process_start() -> float | None:
    """Seconds since this process started (Linux: /proc, 10 ms ticks), else None."""
    try:  # the process start time in clock ticks after boot, field 22 of /proc/self/stat
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


class Marks:
    """Seconds per phase since a start, in the order the phases were first marked."""

    def __init__(self, before: dict[str, float] | None = None) -> None:
        self.last = time.perf_counter()
        self.phases: dict[str, float] = dict(before or {})
        self.start = self.last - sum(self.phases.values())  # on the perf_counter clock

    @classmethod
    def from_process_start(cls) -> Marks:
        """Marks whose first phase, `interpreter`, is the time from process start to now."""
        before = since_process_start()
        return cls({} if before is None else {"interpreter": before})

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self.last
        self.last = now
