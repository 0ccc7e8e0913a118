"""Hydra callback: write the ablation table and figure into the sweep dir when a multirun ends."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class WriteTableCallback(Callback):
    """On multirun end, write table.md/.csv/.tex and ablation.png; a problem only logs a warning."""

    def __init__(self, title: str | None = None) -> None:
        self.title = title

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Build the outputs from config.hydra.sweep.dir; never raise."""
        sweep_dir = "<unknown sweep dir>"
        try:
            sweep_dir = str(config.hydra.sweep.dir)
            from experiments.table import write_outputs

            _, paths = write_outputs(sweep_dir, title=self.title)
            log.info("ablation table written: %s", ", ".join(str(p) for p in paths))
        except Exception as exc:  # a table problem must not mark the sweep failed
            log.warning("could not write the ablation table for %s: %s: %s",
                        sweep_dir, type(exc).__name__, exc)
