"""CSV files: metrics.csv (one row per epoch and seed), summary.csv, config.csv (key, value)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.atomic import write_atomic
from cnn_jax.flat import flatten
from cnn_jax.loggers.base import PER_SEED, Writer, summary_scalars

EPOCH_COLUMNS = ("epoch", "seed", *PER_SEED, "seconds")


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


class CSVWriter(Writer):
    """Writes into `log_dir`; metrics.csv is appended to as epochs end (a resume continues it)."""

    def __init__(self, log_dir: str | Path) -> None:
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics = self.dir / "metrics.csv"

    def config(self, config: Mapping[str, Any]) -> None:
        rows = [("key", "value"), *sorted(flatten(config).items())]
        write_atomic(self.dir / "config.csv", _csv_text(rows))

    def epoch(self, record: Mapping[str, Any], seeds: Sequence[int]) -> None:
        rows = [] if self.metrics.exists() else [EPOCH_COLUMNS]
        for i, seed in enumerate(seeds):
            rows.append((record["epoch"], seed, *(record[k][i] for k in PER_SEED),
                         record.get("seconds")))
        with open(self.metrics, "a") as f:
            f.write(_csv_text(rows))

    def summary(self, metrics: Mapping[str, Any]) -> None:
        values = {"status": metrics.get("status"), **summary_scalars(metrics)}
        rows = [list(values), list(values.values())]
        write_atomic(self.dir / "summary.csv", _csv_text(rows))
