"""benchmarks/timing.py: the micro-benchmarks' timing loop reports seconds per call, best of its
repeats, after a compile-and-warm-up call that is not timed."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_timing", ROOT / "benchmarks" / "timing.py")
timing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(timing)


def test_seconds_per_call_is_per_call_and_skips_the_first_call():
    calls = []

    def fn(x):
        time.sleep(0.5 if not calls else 0.002)  # a slow first call, like a compile
        calls.append(x)
        return x

    seconds = timing.seconds_per_call(fn, 1, repeats=2, min_seconds=0.01)
    assert 0.002 <= seconds < 0.25  # per call (not per timing), the slow first call left out
    assert len(calls) >= 1 + 1 + 2  # warm-up, at least one calibration call, 2 timed repeats
