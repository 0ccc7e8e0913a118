"""Weights & Biases: config, per-seed metrics by epoch, final summary; offline by default.

`mode` defaults to $WANDB_MODE, else "offline" (nothing leaves the machine; `wandb sync` uploads
later); files go under `dir` (default $WANDB_DIR, else the run dir).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.loggers.base import Writer, seed_scalars, summary_scalars


def run_id(run_dir: str | Path) -> str:
    """A stable W&B run id for a run dir, so a resumed run continues the same W&B run."""
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


class WandbWriter(Writer):
    """One W&B run per cnn-jax run: project, group (e.g. the sweep dir), tags."""

    def __init__(self, run_dir: str | Path, project: str = "cnn-jax", group: str | None = None,
                 tags: Sequence[str] = (), mode: str | None = None, dir: str | None = None,
                 name: str | None = None) -> None:
        import wandb

        run_dir = Path(run_dir)
        wandb_dir = Path(dir or os.environ.get("WANDB_DIR") or run_dir)
        wandb_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, group=group, tags=list(tags),
                              name=name or run_dir.name, dir=str(wandb_dir),
                              mode=mode or os.environ.get("WANDB_MODE") or "offline",
                              id=run_id(run_dir), resume="allow",
                              settings=wandb.Settings(silent=True, console="off"))

    def config(self, config: Mapping[str, Any]) -> None:
        self.run.config.update(dict(config), allow_val_change=True)

    def epoch(self, record: Mapping[str, Any], seeds: Sequence[int]) -> None:
        self.run.log({"epoch": record["epoch"], **dict(seed_scalars(record, seeds))},
                     step=record["epoch"])

    def summary(self, metrics: Mapping[str, Any]) -> None:
        self.run.summary.update({**summary_scalars(metrics), "status": metrics.get("status")})

    def close(self) -> None:
        import wandb

        self.run.finish()
        wandb.teardown()  # waits until the run's records are on disk (finish() does not)
