"""MLflow: params (the flat config), per-seed metrics by epoch, final metrics, config.json.

The tracking store defaults to SQLite beside the run dirs (`sqlite:///<parent>/mlflow.db`) with
artifacts in `<parent>/mlartifacts`; `logger.mlflow.tracking_uri` points elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cnn_jax.flat import flatten
from cnn_jax.loggers.base import Writer, seed_scalars, summary_scalars

BATCH = 100  # MLflow's limit on params per log_batch call


def default_tracking_uri(run_dir: str | Path) -> str:
    """sqlite:///<run dir's parent>/mlflow.db: one store per sweep dir (or per day of runs)."""
    return f"sqlite:///{Path(run_dir).resolve().parent / 'mlflow.db'}"


class MLflowWriter(Writer):
    """One MLflow run per cnn-jax run, in experiment `experiment_name`."""

    def __init__(self, run_dir: str | Path, tracking_uri: str | None = None,
                 experiment_name: str = "cnn-jax", run_name: str | None = None,
                 tags: Mapping[str, str] | None = None) -> None:
        from mlflow.tracking import MlflowClient

        run_dir = Path(run_dir).resolve()
        self.tracking_uri = tracking_uri or default_tracking_uri(run_dir)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        artifacts = (run_dir.parent / "mlartifacts").as_uri() if tracking_uri is None else None
        experiment_id = self._experiment(experiment_name, artifacts)
        run = self.client.create_run(experiment_id, run_name=run_name or run_dir.name,
                                     tags={"run_dir": str(run_dir), **dict(tags or {})})
        self.run_id = run.info.run_id

    def _experiment(self, name: str, artifact_location: str | None) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # another job of the sweep created it first
            return self.client.get_experiment_by_name(name).experiment_id

    def config(self, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in sorted(flatten(config).items())]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[i : i + BATCH])
        self.client.log_dict(self.run_id, dict(config), "config.json")

    def _metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step)
                                                    for k, v in values.items()])

    def epoch(self, record: Mapping[str, Any], seeds: Sequence[int]) -> None:
        self._metrics(dict(seed_scalars(record, seeds)), record["epoch"])

    def summary(self, metrics: Mapping[str, Any]) -> None:
        self._metrics({f"final/{k}": v for k, v in summary_scalars(metrics).items()},
                      int(metrics.get("epochs") or 0))
        self.client.set_tag(self.run_id, "status", str(metrics.get("status")))
        self.client.log_dict(self.run_id, dict(metrics), "metrics.json")

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED")
