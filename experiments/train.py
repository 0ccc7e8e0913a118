"""python -m experiments.train [group=option ...] [key=value ...]: train, write its records.

The command line is checked first (`experiments.preflight`: one line and exit 2 for each
mistake, before JAX loads). The run dir is named by the config (`experiments.run_dirs`), so the
same command continues its unfinished run and skips its finished one. Ctrl-C or SIGTERM stops
after the current chunk, keeping the last completed epoch (exit 130 / 143).

Returns `optimized_metric` of the run (validation, never test) to a sweeper; a failed or diverged
run returns the worst value.
"""

from __future__ import annotations

from experiments.clock import Marks

MARKS = Marks.from_process_start()  # first: the interpreter's start-up, then this command's

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

import experiments.run_dirs as run_dirs  # noqa: E402
import hydra_plugins.cnn_jax_schema  # noqa: E402, F401  (the defaults' nodes, from cnn_jax.config)
from experiments.search_trial import TrialPruned, pruned, with_trial  # noqa: E402

MARKS.mark("imports")


def logger_options(dcfg: DictConfig) -> dict[str, Any]:
    """The `logger` node as {name: options} (none chosen: {})."""
    node = OmegaConf.to_container(dcfg.get("logger"), resolve=True) if dcfg.get("logger") else {}
    return {name: options or {} for name, options in node.items()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(dcfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from cnn_jax.errors import command_line
    from cnn_jax.loggers import sweep_group
    from cnn_jax.results.rundir import RunDirInUse, held

    MARKS.mark("config")  # the command line's checks and Hydra's compose
    hc = HydraConfig.get()
    run_dir, overrides = Path(hc.runtime.output_dir), list(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    if not multirun and run_dirs.RUN_DIR_RESOLVER in str(
            OmegaConf.to_container(hc.run, resolve=False).get("dir")):
        run_dirs.link_latest(run_dir)
    metric = dcfg.get("optimized_metric", "val_acc")
    group = sweep_group(str(hc.sweep.dir) if multirun else None)  # a sweep's jobs, in the loggers
    marks = Marks() if multirun else MARKS  # a sweep's job: its own seconds, from here
    try:  # messages name config keys as this command sets them (errors.command_line)
        with held(run_dir), command_line():  # held first: nothing goes into a dir in use
            return run_or_skip(dcfg, run_dir, overrides, metric, multirun, group, marks)
    except RunDirInUse as err:
        return _fail(run_dir, overrides, f"{err}", metric, multirun, exit_code=2, record=False)


def run_or_skip(dcfg: DictConfig, run_dir: Path, overrides: list[str], metric: Any,
                multirun: bool, group: str | None, marks: Marks) -> float:
    """The run (or a skip of a finished one) in run_dir, which this process holds; a failure is
    recorded there (except another config's run: left as it is) and printed in one line."""
    from cnn_jax.config import ConfigError, from_dictconfig, to_dict
    from cnn_jax.data import DataError
    from cnn_jax.results.objective import check_metric, objective
    from cnn_jax.results.rundir import RunDirTaken, prepare
    from cnn_jax.train.stop import Interrupted, StopRequest, stop_on_signals

    try:
        check_metric(metric)
        cfg = from_dictconfig(dcfg)
        plan = prepare(run_dir, to_dict(cfg))  # refused (another config) before a logger starts
        if plan.action == "skip":
            print(result_line(plan.finished, run_dir, None, "finished earlier"))
            return objective(plan.finished, metric)
        marks.mark("config")
        from cnn_jax.experiment import run_planned  # JAX, Flax, optax
        from cnn_jax.loggers import make_writer
        from cnn_jax.train.compiles import enable_compile_cache

        marks.mark("imports")
        enable_compile_cache(cfg.train.compile_cache)
        writer = with_trial(make_writer(logger_options(dcfg), run_dir, group=group))
        marks.mark("setup")
        with stop_on_signals(StopRequest()) as stop:
            metrics = run_planned(cfg, run_dir, plan, overrides, writer=writer, stop=stop,
                                  startup=marks.phases)
    except TrialPruned as err:  # a search's pruner stopped the trial (hparams_search)
        return pruned(run_dir, overrides, err, metric)
    except Interrupted as stopped:
        print(stopped.line, file=sys.stderr)
        raise SystemExit(stopped.exit_code) from None
    except RunDirTaken as err:  # another run's dir: its records stay as they are
        return _fail(run_dir, overrides, f"{err}", metric, multirun, exit_code=2, record=False)
    except (ConfigError, DataError) as err:
        return _fail(run_dir, overrides, f"{err}", metric, multirun, exit_code=2)
    except Exception as err:  # a crashing job is recorded; a sweep goes on without it
        return _fail(run_dir, overrides, f"{type(err).__name__}: {err}", metric, multirun,
                     exit_code=1)
    print(result_line(metrics, run_dir, time.perf_counter() - marks.start))
    return objective(metrics, metric)


def result_line(metrics: dict[str, Any], run_dir: Path, wall: float | None,
                note: str = "") -> str:
    """`ok: test_acc=99.1% epochs=3 train_s=12.3 wall_s=20.1 run_dir=...`: the job's own
    training seconds and its wall time since it started (a sweep job: since the job began)."""
    acc = metrics.get("test_acc")
    train = metrics.get("train_seconds")
    parts = [f"{metrics['status']}: test_acc={acc if acc is None else round(100 * acc, 2)}%",
             f"epochs={metrics.get('epochs')}",
             f"train_s={train:.1f}" if train is not None else None,
             f"wall_s={wall:.1f}" if wall is not None else None,
             f"run_dir={run_dir}", f"({note})" if note else None]
    return " ".join(p for p in parts if p)


def _fail(run_dir: Path, overrides: list[str], error: str, metric: Any, multirun: bool,
          exit_code: int, record: bool = True) -> float:
    """Record the failure in run_dir (unless `record` is False) and print its one line; a
    single run exits, a sweep job scores worst."""
    from cnn_jax.config import ConfigError
    from cnn_jax.errors import first_line
    from cnn_jax.results import records
    from cnn_jax.results.objective import objective

    if record:
        records.write_json_atomic(run_dir / records.METRICS,
                                  records.failure_record(error, overrides))
    print(f"error: {first_line(error)}", file=sys.stderr)
    if not multirun:
        raise SystemExit(exit_code)
    try:
        return objective(None, metric)
    except ConfigError:  # optimized_metric itself was the mistake
        return 0.0


def cli() -> None:
    """The command: its mistakes answered before Hydra; Ctrl-C outside training, one line."""
    from experiments.preflight import exit_on_mistake

    try:
        exit_on_mistake(sys.argv[1:])
        main()
    except KeyboardInterrupt:
        print("stopped (interrupted); run the same command to continue", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    cli()
