"""`hydra/sweeper=optuna_study`: ask the study for trials, launch them as Hydra jobs, tell it
their outcomes, until it holds n_trials; then write optimization_results.yaml into the sweep dir.

Each trial's job runs in the sweep dir's subdir named by the trial (its number; a rerun of a
killed trial: that trial's), and gets the trial's id in $CNN_JAX_OPTUNA_TRIAL
(`experiments.search_trial` reports its epochs there). Several workers (processes started with
the same command and the same shared storage, study_name and sweep dir) share the study.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
RESULTS = "optimization_results.yaml"
TRIAL_ENV = "CNN_JAX_OPTUNA_TRIAL"  # the job's trial id (a job of a search trial)


class OptunaSweeper(Sweeper):
    """Hydra's sweeper interface over `_study` (the Optuna side, imported when a sweep starts)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = OmegaConf.to_container(OmegaConf.create(settings), resolve=True)
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        from cnn_jax.config import ConfigError

        try:
            objective = _checked(self.settings, self.config)
            run_search(self.settings, objective, arguments, self.launcher, self.config)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None


def _checked(settings: dict, config: DictConfig) -> str | tuple[str, ...]:
    """The objective's name (a tuple of names: a multi-objective search), after checking the
    settings; a one-line ConfigError else."""
    from cnn_jax.config import ConfigError
    from cnn_jax.results.objective import DIRECTION, check_metric
    from hydra_plugins.cnn_jax_optuna._storage import check_storage

    spec = config.get("optimized_metric", "val_acc")
    objective = check_metric(spec if isinstance(spec, str) else list(spec))
    if not isinstance(objective, str) and settings.get("pruner") is not None:
        raise ConfigError(f"hydra.sweeper.pruner: a search over {len(objective)} objectives "
                          "cannot prune (Optuna prunes single-objective studies only); set "
                          "hydra.sweeper.pruner=null")
    if settings["direction"] != DIRECTION:
        raise ConfigError(f"hydra.sweeper.direction={settings['direction']!r}: {objective} "
                          f"is maximised (allowed: {DIRECTION})")
    check_storage(settings["storage"])
    if not settings["study_name"] or not isinstance(settings["study_name"], str):
        raise ConfigError(f"hydra.sweeper.study_name={settings['study_name']!r}: a study needs "
                          "a name (a string)")
    for key in ("n_trials", "n_jobs"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise ConfigError(f"hydra.sweeper.{key}={settings[key]!r} is not a positive int")
    return objective


def job_outcome(ret: Any) -> tuple[bool, str | None, Any]:
    """A job's (ran to its end, its run's metrics.json status, the value it returned or the
    exception it raised)."""
    from cnn_jax.results.records import read_metrics

    if ret.status != JobStatus.COMPLETED:
        return False, None, ret._return_value
    try:
        status = (read_metrics(ret.hydra_cfg.hydra.runtime.output_dir) or {}).get("status")
    except (OSError, ValueError):
        status = None
    return True, status, ret.return_value


def run_search(settings: dict, objective: str | tuple[str, ...], arguments: list[str],
               launcher: Any, config: DictConfig) -> None:
    """The ask / launch / tell loop of one worker, then its optimization_results.yaml."""
    import yaml

    from cnn_jax.atomic import write_atomic
    from hydra_plugins.cnn_jax_optuna import _space, _study

    space, fixed = _space.search_space(settings["params"] or {}, arguments)
    sweep_dir = Path(config.hydra.sweep.dir)
    write_atomic(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(config))  # as Hydra's sweepers
    study = _study.open_study(settings, objective)
    _study.enqueue_start(study, settings, space, _space.keys_of(fixed))
    while trials := _study.ask_batch(study, settings, space):
        jobs = [[*fixed, *_space.trial_overrides(t.params),
                 f"hydra.sweep.subdir={t.user_attrs[_study.JOB]}",
                 f"++hydra.job.env_set.{TRIAL_ENV}={t._trial_id}"] for t in trials]
        with _study.heartbeats(study, trials):
            returns = launcher.launch(jobs, initial_job_idx=trials[0].number)
        for trial, ret in zip(trials, returns, strict=True):
            ran, status, value = job_outcome(ret)
            _study.tell(study, trial, ran, status, value)
            log.info("trial %d (job %s): %s", trial.number, trial.user_attrs[_study.JOB],
                     status if ran else f"job failed: {value!r}")
    results = _study.results(study, settings, objective, sweep_dir)
    write_atomic(sweep_dir / RESULTS, yaml.safe_dump(results, sort_keys=False))
    if isinstance(objective, str):
        log.info("best trial: %s (%s=%s) in %s", results["best_trial"], objective,
                 results["best_value"], results["best_run_dir"])
    else:
        log.info("Pareto front of %s: trials %s", ", ".join(objective),
                 ", ".join(str(t["trial"]) for t in results["best_trials"]))
