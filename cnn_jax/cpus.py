"""The CPU this process runs on: the cores it may use and the processor's model (no JAX)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def usable_core_ids() -> list[int]:
    """The CPU cores this process may run on, in order (its affinity mask where the OS has one,
    else every core)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """How many CPU cores this process may run on (`usable_core_ids`)."""
    return len(usable_core_ids())


def cpu_model() -> str:
    """The processor's model name ("AMD EPYC 7B13", ...): /proc/cpuinfo's, else platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
