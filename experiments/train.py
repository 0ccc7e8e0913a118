"""python -m experiments.train [group=option ...] [key=value ...]: train, write its records.

Returns `optimized_metric` of the run (validation, never test) to a sweeper; a failed or diverged
run returns the worst value. A run dir that holds a finished run of the same resolved config is
skipped; one with a checkpoint of it is resumed (train.resume=auto).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnn_jax.config import ConfigError, from_dictconfig, to_dict
from cnn_jax.data import DataError
from cnn_jax.errors import first_line
from cnn_jax.experiment import run
from cnn_jax.loggers import make_writer, sweep_group
from cnn_jax.results import records
from cnn_jax.results.objective import OBJECTIVES, check_metric, objective
from cnn_jax.results.rundir import RunDirInUse, RunDirTaken, finished, held, should_resume
from cnn_jax.train.compiles import enable_compile_cache
from experiments.overrides import exit_on_bad_group_choice
from experiments.plugins import load_cli_plugins

_IMPORTED = time.perf_counter()


def logger_options(dcfg: DictConfig) -> dict[str, Any]:
    """The `logger` node as {name: options} (none chosen: {})."""
    node = OmegaConf.to_container(dcfg.get("logger"), resolve=True) if dcfg.get("logger") else {}
    return {name: options or {} for name, options in node.items()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(dcfg: DictConfig) -> float:
    hc = HydraConfig.get()
    run_dir, overrides = Path(hc.runtime.output_dir), list(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    metric = dcfg.get("optimized_metric", "val_acc")
    group = sweep_group(str(hc.sweep.dir) if multirun else None)  # a sweep's jobs, in the loggers
    try:
        with held(run_dir):  # first: nothing, a failure record neither, goes into a dir in use
            return run_or_skip(dcfg, run_dir, overrides, metric, multirun, group)
    except RunDirInUse as err:
        return _fail(run_dir, overrides, f"{err}", metric, multirun, exit_code=2, record=False)


def run_or_skip(dcfg: DictConfig, run_dir: Path, overrides: list[str], metric: Any,
                multirun: bool, group: str | None) -> float:
    """The run (or a skip of a finished one) in run_dir, which this process holds; a failure is
    recorded there (except another config's run: left as it is) and printed in one line."""
    try:
        check_metric(metric)
        cfg = from_dictconfig(dcfg)
        done = finished(run_dir, to_dict(cfg)) if cfg.train.resume is not False else None
        if done:
            print(f"skip (already {done['status']}): {run_dir}")
            return objective(done, metric)
        should_resume(run_dir, to_dict(cfg), cfg.train.resume)  # refused before a logger starts
        enable_compile_cache(cfg.train.compile_cache)
        writer = make_writer(logger_options(dcfg), run_dir, group=group)
        metrics = run(cfg, run_dir, overrides, writer=writer)
    except RunDirTaken as err:  # another run's dir: its records stay as they are
        return _fail(run_dir, overrides, f"{err}", metric, multirun, exit_code=2, record=False)
    except (ConfigError, DataError) as err:
        return _fail(run_dir, overrides, f"{err}", metric, multirun, exit_code=2)
    except Exception as err:  # a crashing job is recorded; a sweep goes on without it
        return _fail(run_dir, overrides, f"{type(err).__name__}: {err}", metric, multirun,
                     exit_code=1)
    acc = metrics["test_acc"]
    print(f"{metrics['status']}: test_acc={acc if acc is None else round(100 * acc, 2)}% "
          f"epochs={metrics['epochs']} seconds={metrics['seconds']:.1f} "
          f"wall_from_start={since_process_start():.1f}s run_dir={run_dir}")
    return objective(metrics, metric)


def since_process_start() -> float:
    """Seconds since this process started (interpreter start and imports included)."""
    try:  # Linux: the process start time in clock ticks after boot, field 22 of /proc/self/stat
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


def _fail(run_dir: Path, overrides: list[str], error: str, metric: Any, multirun: bool,
          exit_code: int, record: bool = True) -> float:
    """Record the failure in run_dir (unless `record` is False) and print its one line; a
    single run exits, a sweep job scores worst."""
    if record:
        records.write_json_atomic(run_dir / records.METRICS,
                                  records.failure_record(error, overrides))
    print(f"error: {first_line(error)}", file=sys.stderr)
    if not multirun:
        raise SystemExit(exit_code)
    return objective(None, metric) if metric in OBJECTIVES else 0.0


if __name__ == "__main__":
    load_cli_plugins()  # first: a plugin's models are options of the model group
    exit_on_bad_group_choice()
    main()
