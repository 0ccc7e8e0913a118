"""Hydra callbacks. WriteTableCallback: when a multirun ends, write the ablation table and figure
into the sweep dir, print one line counting its jobs by status, and exit 1 if any job failed (a
job another process is still training, as another worker of a shared search does, is running,
not failed). OneThreadPool: each job one-threaded, for a launcher that runs jobs side by side."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)
SHOWN_WHEN_SOME = ("pruned", "running")  # counts the status line leaves out when they are 0


def job_statuses(sweep_dir: str | Path) -> dict[str, int]:
    """How many job dirs of the sweep are ok, diverged, failed, pruned, running (no metrics.json:
    running while a process holds the dir, else failed)."""
    from cnn_jax.results.records import STATUSES, read_metrics
    from cnn_jax.results.rundir import holder
    from cnn_jax.results.tables import find_job_dirs

    counts = dict.fromkeys((*STATUSES, "running"), 0)
    for job in find_job_dirs(sweep_dir):
        try:
            status = (read_metrics(job) or {}).get("status")
        except (OSError, ValueError):
            status = None
        if status is None and holder(job) is not None:
            status = "running"
        counts[status if status in counts else "failed"] += 1
    return counts


def status_line(counts: dict[str, int]) -> str:
    """'jobs: 3 ok, 1 diverged, 1 failed' (and ', 2 pruned', ', 1 running' when there are some)."""
    return "jobs: " + ", ".join(f"{n} {status}" for status, n in counts.items()
                                if n or status not in SHOWN_WHEN_SOME)


class WriteTableCallback(Callback):
    """On multirun end: table.md/.csv/.tex and ablation.png (a problem only logs a warning), then
    the status line; a sweep dir holding a failed job makes the command exit with status 1."""

    def __init__(self, title: str | None = None) -> None:
        self.title = title

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Build the outputs from config.hydra.sweep.dir, count the jobs, exit 1 on a failure."""
        sweep_dir = "<unknown sweep dir>"
        try:
            sweep_dir = str(config.hydra.sweep.dir)
            from experiments.table import write_outputs

            _, paths = write_outputs(sweep_dir, title=self.title)
            log.info("ablation table written: %s", ", ".join(str(p) for p in paths))
        except Exception as exc:  # a table problem must not mark the sweep failed
            log.warning("could not write the ablation table for %s: %s: %s",
                        sweep_dir, type(exc).__name__, exc)
        if not Path(sweep_dir).is_dir():
            return
        counts = job_statuses(sweep_dir)
        print(status_line(counts), flush=True)
        if counts["failed"]:
            raise SystemExit(1)  # not an Exception: Hydra lets it end the process


def one_thread_pool() -> None:
    """Create JAX's CPU client while this process may use only its first core, then restore its
    cores: XLA:CPU sizes its intra-op thread pool from the affinity mask when the client is
    created, so the pool has one thread, and the process computes the bits a process pinned to
    one core does (docs/reproducibility.md). A client created before stays as it is."""
    import os

    if not hasattr(os, "sched_setaffinity"):
        return
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        import jax

        jax.devices("cpu")
    finally:
        os.sched_setaffinity(0, cores)


class OneThreadPool(Callback):
    """On each job's start, `one_thread_pool()` in the process that runs it: the jobs a parallel
    launcher (joblib) runs side by side are one-threaded each and share the cores
    (`reproduce --launcher joblib` adds it: `+hydra.callbacks.one_thread_pool._target_=...`)."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        one_thread_pool()
