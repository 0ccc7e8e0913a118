"""One run, end to end and Hydra-free: config -> data -> fit -> records in a run directory."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import jax

from cnn_jax.atomic import write_atomic
from cnn_jax.config import Config, to_dict
from cnn_jax.data import load_splits
from cnn_jax.models.summary import flops_per_image, param_count
from cnn_jax.protocol import run_summary, seeds_of
from cnn_jax.results import records
from cnn_jax.train import checkpoint
from cnn_jax.train.ensemble import vote_accuracy
from cnn_jax.train.loop import FitResult, run_epochs
from cnn_jax.train.program import build
from cnn_jax.train.state import Progress

CHECKPOINTS = "checkpoints"
TENSORBOARD = "tb"


def metrics_record(cfg: Config, result: FitResult, seconds: float, overrides: list[str]) -> dict:
    """The metrics.json record of a finished fit."""
    return {
        **run_summary(result.per_seed),
        "error": None,
        "overrides": overrides,
        "model": cfg.model.name,
        "seeds": seeds_of(cfg),
        "per_seed": result.per_seed,
        "epochs": len(result.history),
        "params": param_count(cfg.model),
        "flops_per_image": flops_per_image(cfg.model),
        "seconds": seconds,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "images_per_sec": result.images_per_sec,
        "device": jax.devices()[0].platform,
    }


def _epoch_logger(cfg: Config, run_dir: Path):
    """on_epoch callback: metrics.jsonl line, TensorBoard scalars, orbax checkpoint."""
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(run_dir / TENSORBOARD))
    manager = checkpoint.checkpoint_manager(run_dir / CHECKPOINTS) if cfg.train.checkpoint else None

    def on_epoch(progress: Progress) -> None:
        record = progress.history[-1]
        records.append_jsonl(run_dir / records.EPOCHS, record)
        for name in ("train_loss", "val_acc", "test_acc"):
            for seed, value in zip(seeds_of(cfg), record[name], strict=True):
                writer.add_scalar(f"{name}/seed{seed}", value, record["epoch"])
        writer.flush()
        if manager is not None:
            checkpoint.save_progress(manager, progress)

    return on_epoch, manager, writer


def _warn_if_schedule_replanned(cfg: Config, path: Path) -> None:
    """Resuming with other epochs / batch size re-plans a cosine or one-cycle schedule."""
    if cfg.optimizer.schedule == "constant" or not path.exists():
        return
    old = json.loads(path.read_text())["train"]
    if (old["epochs"], old["batch_size"]) != (cfg.train.epochs, cfg.train.batch_size):
        logging.getLogger(__name__).warning(
            "resume: train.epochs/batch_size changed from %s/%s; the %s schedule is re-planned, "
            "so results differ from an uninterrupted run", old["epochs"], old["batch_size"],
            cfg.optimizer.schedule)


def run(cfg: Config, run_dir: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Train `cfg` and write config.json, metrics.jsonl, metrics.json, checkpoints into run_dir."""
    start = time.perf_counter()
    logging.getLogger("absl").setLevel(logging.WARNING)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = list(overrides or [])
    (run_dir / records.METRICS).unlink(missing_ok=True)
    if cfg.train.resume:
        _warn_if_schedule_replanned(cfg, run_dir / records.CONFIG)
    records.write_json_atomic(run_dir / records.CONFIG, to_dict(cfg))
    if not cfg.train.resume:
        (run_dir / records.EPOCHS).unlink(missing_ok=True)
        shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)
    splits = load_splits(cfg.data)
    program = build(cfg, splits)
    on_epoch, manager, writer = _epoch_logger(cfg, run_dir)
    saved = None
    if cfg.train.resume and manager is not None:
        saved = checkpoint.restore_progress(manager, program.fresh())
    # metrics.jsonl holds exactly the epochs the run continues from (none when fresh)
    history = saved.history if saved else []
    write_atomic(run_dir / records.EPOCHS, "".join(records.json_line(h) for h in history))
    try:
        result = run_epochs(program, saved, on_epoch)
    finally:
        writer.close()
    metrics = metrics_record(cfg, result, time.perf_counter() - start, overrides)
    if cfg.train.vote:
        metrics["vote_test_acc"] = vote_accuracy(program.model, result.progress.best_params,
                                                 splits.test_x, splits.test_y)
    records.write_json_atomic(run_dir / records.METRICS, metrics)
    return metrics
