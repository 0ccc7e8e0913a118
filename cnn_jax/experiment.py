"""One run, end to end and Hydra-free: config -> data -> fit -> records in a run directory."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from cnn_jax.atomic import write_atomic
from cnn_jax.config import Config, ConfigError, arch_of, to_dict
from cnn_jax.data import load_splits
from cnn_jax.data import source as data_source
from cnn_jax.data.source import dataset_of
from cnn_jax.errors import first_line, setting
from cnn_jax.loggers import MultiWriter, Writer
from cnn_jax.models.summary import model_costs
from cnn_jax.protocol import run_summary, seeds_of
from cnn_jax.results import records
from cnn_jax.results.provenance import provenance
from cnn_jax.results.rundir import CHECKPOINTS, Plan, RunDirTaken, held, prepare
from cnn_jax.train import checkpoint
from cnn_jax.train.ensemble import errors_of, plurality_vote, seed_predictions
from cnn_jax.train.loop import FitResult, run_epochs
from cnn_jax.train.program import build
from cnn_jax.train.state import Progress
from cnn_jax.train.stop import Interrupted, StopRequest
from cnn_jax.train.watch import epoch_line, header_lines

log = logging.getLogger(__name__)

def metrics_record(cfg: Config, result: FitResult, seconds: float, overrides: list[str],
                   seeds: list[int]) -> dict:
    """The metrics.json record of a finished fit of `seeds`."""
    params, flops = model_costs(cfg.model)
    return {
        **run_summary(result.per_seed),
        "error": None,
        "overrides": overrides,
        "model": getattr(cfg.model, "name", arch_of(cfg.model)),
        "seeds": seeds,
        "per_seed": result.per_seed,
        "epochs": len(result.history),
        "params": params,
        "flops_per_image": flops,
        "seconds": seconds,
        "reduced_eval": {k: v for k, v in (("val_limit", cfg.data.val_limit),
                                           ("test_limit", cfg.data.test_limit)) if v} or None,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "images_per_sec": result.images_per_sec,
        "device": jax.devices()[0].platform,
    }


def phases(start: float, t_data: float, t_build: float, t_built: float,
           result: FitResult) -> dict[str, float]:
    """Where this process's run time went, in seconds: setting up the run dir, loading the
    data, tracing (and putting the data on the device), compiling (or loading the compiled
    programs from the compile cache), training and evaluating (this process's epochs)."""
    return {"setup": t_data - start, "data": t_build - t_data,
            "trace": t_built - t_build - result.compile_seconds,
            "compile": result.compile_seconds,
            "train": result.train_seconds - result.eval_seconds,
            "evaluate": result.eval_seconds}


def before_run(startup: float | Mapping[str, float] | None) -> dict[str, float]:
    """The phases before the run, each prefixed `startup.` (one figure: `startup`)."""
    if startup is None:
        return {}
    if isinstance(startup, Mapping):
        return {f"startup.{name}": seconds for name, seconds in startup.items()}
    return {"startup": startup}


def _epoch_logger(cfg: Config, run_dir: Path, writer: Writer):
    """on_epoch callback: metrics.jsonl line, the experiment loggers, orbax checkpoint."""
    manager = checkpoint.checkpoint_manager(run_dir / CHECKPOINTS) if cfg.train.checkpoint else None
    seeds = seeds_of(cfg)

    def on_epoch(progress: Progress) -> None:
        record = progress.history[-1]
        log.info("%s", epoch_line(record, cfg.train.epochs))
        records.append_jsonl(run_dir / records.EPOCHS, record)
        writer.epoch(record, seeds)
        if manager is not None:
            checkpoint.save_progress(manager, progress)

    return on_epoch, manager


def _restore(manager: Any, program: Any, run_dir: Path) -> Progress | None:
    """The checkpoint's Progress (a corrupt latest epoch passed over for the one before it,
    with a warning); one that does not fit this run's shapes (other seeds, another model under
    train.resume=true) is a RunDirTaken error, and an unreadable one a ConfigError naming it
    corrupt, with the dir left as it was."""
    try:
        return checkpoint.restore_progress(manager, program.fresh(), warn=log.warning)
    except checkpoint.CorruptCheckpoint as err:
        raise ConfigError(f"{run_dir}: {err}; {setting('train.resume', False)} starts it "
                          "over") from err
    except (ValueError, TypeError, KeyError) as err:  # shapes or tree structure that differ
        raise RunDirTaken(f"{run_dir}: its checkpoint does not fit this config "
                          f"({type(err).__name__}: {first_line(err)[:200]}); "
                          f"{setting('train.resume', False)} starts it over, or choose "
                          "another run dir") from err


def _warn_if_schedule_replanned(cfg: Config, path: Path) -> None:
    """Resuming with other epochs / batch size re-plans a cosine or one-cycle schedule."""
    if cfg.optimizer.schedule == "constant" or not path.exists():
        return
    old = json.loads(path.read_text())["train"]
    if (old["epochs"], old["batch_size"]) != (cfg.train.epochs, cfg.train.batch_size):
        log.warning(
            "resume: train.epochs/batch_size changed from %s/%s; the %s schedule is re-planned, "
            "so results differ from an uninterrupted run", old["epochs"], old["batch_size"],
            cfg.optimizer.schedule)


def _ensemble_records(cfg: Config, model: Any, result: FitResult, splits: Any, run_dir: Path,
                      metrics: dict[str, Any]) -> None:
    """From each seed's best-validation net's test predictions: the vote's accuracy into
    `metrics` (train.vote), the nets' errors into test_errors.json (train.test_errors)."""
    predictions = seed_predictions(model, result.progress.best_params, splits.test_x)
    if cfg.train.vote:
        classes = dataset_of(cfg.data.name, cfg.data.source, cfg.data.data_dir).num_classes
        votes = plurality_vote(predictions, classes)
        metrics["vote_test_acc"] = float((votes == splits.test_y).mean())
    if cfg.train.test_errors:
        records.write_test_errors(run_dir, [row["seed"] for row in result.per_seed],
                                  len(splits.test_y),
                                  errors_of(predictions, splits.test_y))


def run(cfg: Config, run_dir: str | Path, overrides: list[str] | None = None,
        writer: Writer | None = None, stop: StopRequest | None = None) -> dict[str, Any]:
    """Train `cfg` and write config.json, metrics.jsonl, metrics.json, checkpoints into run_dir.

    What run_dir already holds decides (`rundir.prepare`, under train.resume): a finished run of
    the same config is not trained again (its metrics.json is returned); its checkpoint is
    continued; otherwise the run starts fresh. A run dir another process is training in is a
    RunDirInUse error. `writer` gets the config, every epoch and the final record (default: no
    experiment logger); it is closed when the run ends. Once `stop` is set (see
    `cnn_jax.train.stop`), the run ends after its current chunk: metrics.json says
    `interrupted`, the last completed epoch's checkpoint stays, and `Interrupted` is raised.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = writer or MultiWriter([])
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(held(run_dir))
            plan = prepare(run_dir, to_dict(cfg))
        except RunDirTaken:  # in use, or another config's: the writer hears nothing of it
            writer.close()
            raise
        return run_planned(cfg, run_dir, plan, overrides, writer, stop)


def run_planned(cfg: Config, run_dir: str | Path, plan: Plan,
                overrides: list[str] | None = None, writer: Writer | None = None,
                stop: StopRequest | None = None,
                startup: float | Mapping[str, float] | None = None) -> dict[str, Any]:
    """`run` after its decision `plan` (`rundir.prepare`), in a run dir this process holds.
    `startup`: the seconds before it, by phase (the CLI's: interpreter, imports, config,
    setup) or in one figure, recorded first among the run's phases."""
    start = time.perf_counter()
    origin = provenance()
    logging.getLogger("absl").setLevel(logging.WARNING)
    run_dir = Path(run_dir)
    writer = writer or MultiWriter([])
    with contextlib.closing(writer):
        if plan.action == "skip":
            return plan.finished
        return _train(cfg, run_dir, plan.action == "resume", list(overrides or []), writer,
                      start, origin, stop, startup)


def _train(cfg: Config, run_dir: Path, resume: bool, overrides: list[str], writer: Writer,
           start: float, origin: dict[str, Any], stop: StopRequest | None,
           startup: float | Mapping[str, float] | None = None) -> dict[str, Any]:
    """run's training, fresh or resumed, in a run dir this process holds."""
    manager = None
    config = to_dict(cfg)
    try:
        if not resume:
            for name in (records.METRICS, records.EPOCHS, records.TEST_ERRORS):
                (run_dir / name).unlink(missing_ok=True)
            shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)
            records.write_json_atomic(run_dir / records.CONFIG, config)
            writer.config(config)
        t_data = time.perf_counter()
        splits = load_splits(cfg.data)
        t_build = time.perf_counter()
        program = build(cfg, splits)
        t_built = time.perf_counter()
        for line in header_lines(cfg, splits, data_source.choose(cfg.data), program.seeds,
                                 program.batching):
            log.info("%s", line)
        log.info("compiled in %.1f s", program.compile_seconds)
        on_epoch, manager = _epoch_logger(cfg, run_dir, writer)
        saved = _restore(manager, program, run_dir) if resume else None
        if resume:  # the dir is this run's from here on
            log.info("resuming %s at epoch %d/%d", run_dir,
                     (saved.epochs_done if saved else 0) + 1, cfg.train.epochs)
            _warn_if_schedule_replanned(cfg, run_dir / records.CONFIG)
            for name in (records.METRICS, records.TEST_ERRORS):  # the finished run's, if any
                (run_dir / name).unlink(missing_ok=True)
            records.write_json_atomic(run_dir / records.CONFIG, config)
            writer.config(config)
        # metrics.jsonl holds exactly the epochs the run continues from (none when fresh)
        history = saved.history if saved else []
        write_atomic(run_dir / records.EPOCHS, "".join(records.json_line(h) for h in history))
        restored_seconds = sum(h["seconds"] for h in history)
        try:
            result = run_epochs(program, saved, on_epoch, stop)
        except Interrupted as stopped:
            records.write_json_atomic(run_dir / records.METRICS, {
                "status": "interrupted", "error": None, "overrides": overrides,
                "seeds": program.seeds, "epochs": stopped.epochs_done,
                "stopped_at": {"epoch": stopped.epoch, "step": stopped.step,
                               "steps": stopped.steps, "signal": int(stopped.signum)},
                "seconds": time.perf_counter() - start + restored_seconds,
                "provenance": origin})
            raise
        metrics = metrics_record(cfg, result, time.perf_counter() - start + restored_seconds,
                                 overrides, program.seeds)
        metrics["resumed_from"] = saved.epochs_done if saved else None  # its checkpoint's epoch
        metrics["phases"] = before_run(startup) | phases(start, t_data, t_build, t_built,
                                                        result)
        log.info("phases: %s", ", ".join(f"{k} {v:.2f} s" for k, v in metrics["phases"].items()))
        metrics["provenance"] = origin
        if cfg.train.vote or cfg.train.test_errors:
            _ensemble_records(cfg, program.model, result, splits, run_dir, metrics)
        records.write_json_atomic(run_dir / records.METRICS, metrics)
        writer.summary(metrics)
    finally:
        if manager is not None:
            manager.close()
    return metrics
