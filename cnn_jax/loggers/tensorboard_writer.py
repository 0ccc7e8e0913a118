"""TensorBoard (tensorboardX): per-seed scalars, the config as text, hyperparameters (hparams)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.loggers.base import Writer, scalar_params, seed_scalars, summary_scalars


class TensorBoardWriter(Writer):
    """Event files in `log_dir`; the hparams plugin's session in `log_dir/hparams`."""

    def __init__(self, log_dir: str | Path) -> None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))
        self.params: dict[str, Any] = {}

    def config(self, config: Mapping[str, Any]) -> None:
        self.params = scalar_params(config)
        text = json.dumps(config, indent=2, sort_keys=True, default=repr)
        self.writer.add_text("config", f"```\n{text}\n```", 0)

    def epoch(self, record: Mapping[str, Any], seeds: Sequence[int]) -> None:
        for tag, value in seed_scalars(record, seeds):
            self.writer.add_scalar(tag, value, record["epoch"])
        self.writer.flush()

    def summary(self, metrics: Mapping[str, Any]) -> None:
        final = {f"final/{k}": v for k, v in summary_scalars(metrics).items()}
        self.writer.add_hparams(self.params, final, name="hparams")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
