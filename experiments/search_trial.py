"""The job side of a search trial (hparams_search, `hydra/sweeper=optuna_study`): after each
epoch the validation accuracy, the mean over the run's seeds (a diverged seed counts 0), is
reported to the Optuna trial the sweeper asked for this job; when the study's pruner says stop,
the epoch raises TrialPruned, and the run's metrics.json records status `pruned`.

A job is a trial's when $CNN_JAX_OPTUNA_TRIAL holds the trial's id. It reaches the study the
sweeper has open in this process, else (a job in another process: joblib, SLURM) the study in
the storage its Hydra config names; an in-memory study in another process: no pruning.
Importing this module loads neither JAX nor Optuna (the CLI answers mistakes before JAX loads).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra_plugins.cnn_jax_optuna.sweeper import TRIAL_ENV

log = logging.getLogger(__name__)


class TrialPruned(Exception):
    """The search's pruner stopped this trial after `epoch` epochs."""

    def __init__(self, epoch: int, value: float) -> None:
        super().__init__(f"pruned by the search after epoch {epoch} (val_acc {value:.4f})")
        self.epoch = epoch


def epoch_value(record: Mapping[str, Any]) -> float:
    """An epoch's validation accuracy, the mean over its seeds; a diverged seed (None or NaN)
    counts as 0, the worst value."""
    values = [v if v is not None and math.isfinite(v) else 0.0 for v in record["val_acc"]]
    return sum(values) / len(values)


class TrialReporter:
    """A writer (`cnn_jax.loggers.Writer`'s four methods, only `epoch` doing anything) that
    reports each epoch to an Optuna trial and raises TrialPruned when the study's pruner says so."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def config(self, config: Mapping[str, Any]) -> None:
        """Nothing: the trial's params are the sweeper's."""

    def summary(self, metrics: Mapping[str, Any]) -> None:
        """Nothing: the sweeper tells the trial its outcome."""

    def close(self) -> None:
        """Nothing to release."""

    def epoch(self, record: Mapping[str, Any], seeds: Sequence[int]) -> None:
        step, value = int(record["epoch"]), epoch_value(record)
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise TrialPruned(step, value)


def current_trial() -> Any:
    """The Optuna trial of this job (None: not a search trial's job, or out of reach)."""
    trial_id = os.environ.get(TRIAL_ENV)
    if not trial_id:
        return None
    import optuna
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from hydra_plugins.cnn_jax_optuna import _storage, _study

    settings = OmegaConf.to_container(HydraConfig.get().sweeper, resolve=True)
    spec, name = settings.get("storage"), settings.get("study_name")
    study = _study.live_study(spec, name)
    if study is None and spec is None:
        log.warning("the study is in another process's memory: this trial is not pruned")
        return None
    if study is None:
        study = optuna.load_study(study_name=name, storage=_storage.make_storage(spec),
                                  pruner=_study.make_pruner(settings.get("pruner")))
    if len(study.directions) > 1:  # Optuna takes no epoch reports in a multi-objective study
        return None
    return optuna.trial.Trial(study, int(trial_id))


def with_trial(writer: Any) -> Any:
    """`writer` (a `cnn_jax.loggers.Writer`), plus the trial's reporter when this job is a search
    trial's."""
    trial = current_trial()
    if trial is None:
        return writer
    from cnn_jax.loggers import MultiWriter

    return MultiWriter([writer, TrialReporter(trial)])


def pruned(run_dir: Path, overrides: list[str], err: TrialPruned, metric: str) -> float:
    """Record the pruned run in run_dir's metrics.json, print its line, return the objective a
    run that did not finish gets (the sweeper tells the trial pruned)."""
    from cnn_jax.results import records
    from cnn_jax.results.objective import objective

    record = {**records.failure_record(str(err), overrides), "status": "pruned",
              "epochs": err.epoch}
    records.write_json_atomic(Path(run_dir) / records.METRICS, record)
    print(f"pruned: {err} run_dir={run_dir}")
    return objective(None, metric)
