"""One Optuna study shared by the workers of a search: opened (or created) by name in its storage,
its trial budget counted there, trials of killed workers run again, outcomes told, results.

The budget: a worker asks for trials only while holding the study's lock (`_storage.budget_lock`)
and only while the study holds fewer than n_trials trials (running, waiting, complete, pruned and
failed alike), so the workers of a search, and its reruns, run n_trials in total. A trial whose
worker was killed (an RDB storage's heartbeat gone stale) is marked stale, failed and left out of
the count, and a copy of it (same params, same job dir: its checkpoint resumes) is queued.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, Trial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from cnn_jax.config import ConfigError
from cnn_jax.errors import first_line
from cnn_jax.results.objective import directions
from hydra_plugins.cnn_jax_optuna._storage import budget_lock, make_storage, shown

STALE = "cnn_jax:stale"  # system attr: a trial failed because its worker died, not counted
JOB = "job"  # user attr: the trial's job dir in the sweep dir
RESUMES = "resumes"  # user attr: the number of the stale trial a queued copy runs again
_LIVE: dict[tuple[str | None, str], optuna.Study] = {}  # the studies this process searches

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_sampler(sampler: Mapping[str, Any] | None, offset: int = 0) -> Any:
    """The configured sampler; a seeded one gets seed + offset (each trial its own seed, so the
    workers of one study never sample the same values)."""
    options = dict(sampler or {"_target_": "optuna.samplers.TPESampler"})
    if options.get("seed") is not None:
        options["seed"] = int(options["seed"]) + offset
    return instantiate(options)


def make_pruner(pruner: Mapping[str, Any] | None) -> Any:
    """The configured pruner; None: no pruning."""
    return optuna.pruners.NopPruner() if pruner is None else instantiate(dict(pruner))


def open_study(settings: Mapping[str, Any], objective: str | Sequence[str] = "val_acc"
               ) -> optuna.Study:
    """The study of `settings` (hydra.sweeper) in its storage, created by the first worker, over
    one objective (its direction the setting's) or several (each its own direction); a storage
    that cannot be reached (or whose driver is missing) is a one-line ConfigError."""
    spec, name = settings["storage"], settings["study_name"]
    which = ({"direction": settings["direction"]} if isinstance(objective, str)
             else {"directions": directions(list(objective))})
    try:
        with budget_lock(spec, name):  # one worker at a time creates the tables and the study
            storage = make_storage(spec, settings.get("heartbeat_interval"))
            study = optuna.create_study(
                storage=storage, study_name=name, **which,
                sampler=make_sampler(settings.get("sampler")),
                pruner=make_pruner(settings.get("pruner")), load_if_exists=True)
    except (SQLAlchemyError, OSError, ImportError) as err:
        raise ConfigError(f"hydra.sweeper.storage={shown(spec)!r}: {type(err).__name__}: "
                          f"{first_line(err)}") from err
    _LIVE[(spec, name)] = study
    return study


def live_study(spec: str | None, name: str) -> optuna.Study | None:
    """The study this process's sweeper has open (a job run in the sweeper's process)."""
    return _LIVE.get((spec, name))


def counted(trials: Sequence[FrozenTrial]) -> int:
    """The trials that count towards the budget: all but the stale ones."""
    return sum(not t.system_attrs.get(STALE) for t in trials)


def heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between a running trial's heartbeats (None: its storage keeps none)."""
    storage = study._storage
    return storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None


def rerun_stale(study: optuna.Study) -> list[int]:
    """Fail the running trials whose heartbeat is stale, mark them, and queue a copy of each
    (same params and job dir); their numbers. Call it holding the study's lock."""
    storage = study._storage
    if not heartbeat_interval(study):
        return []
    rerun = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        trial = storage.get_trial(trial_id)
        storage.set_trial_system_attr(trial_id, STALE, True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={
            JOB: trial.user_attrs.get(JOB, str(trial.number)), RESUMES: trial.number})
        rerun.append(trial.number)
    return rerun


def inside(distribution: Any, value: Any) -> bool:
    """Whether `value` is one the distribution can sample."""
    try:
        return distribution._contains(distribution.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def enqueue_start(study: optuna.Study, settings: Mapping[str, Any], space: dict,
                  fixed: Sequence[str] = ()) -> int:
    """Queue the trials of `hydra.sweeper.enqueue` (each a {swept key: value} dict, e.g. the
    current recipe, so the search starts from it) into a study that has no trials yet; how many
    were queued. A key in `fixed` (set to one value on the command line, for every trial) is left
    out; any other key that is not swept, or a value outside its distribution, is a one-line
    ConfigError."""
    starts = [{k: v for k, v in dict(params).items() if k not in fixed}
              for params in settings.get("enqueue") or []]
    for i, params in enumerate(starts):
        for key, value in params.items():
            where = f"hydra.sweeper.enqueue[{i}].{key}={value!r}"
            if key not in space:
                raise ConfigError(f"{where}: not a swept key (swept: {', '.join(space)})")
            if not inside(space[key], value):
                raise ConfigError(f"{where} is outside its search space {space[key]}")
    with budget_lock(settings["storage"], settings["study_name"]):
        if study.get_trials(deepcopy=False):  # a rerun or another worker's study: started
            return 0
        for params in starts:
            study.enqueue_trial(params)
    return len(starts)


def ask_batch(study: optuna.Study, settings: Mapping[str, Any], space: dict) -> list[Trial]:
    """Up to n_jobs new trials, as many as the budget has left (none: the search is done)."""
    with budget_lock(settings["storage"], settings["study_name"]):
        rerun_stale(study)
        trials = study.get_trials(deepcopy=False)
        left = min(settings["n_jobs"], settings["n_trials"] - counted(trials))
        asked = []
        for i in range(max(left, 0)):
            study.sampler = make_sampler(settings.get("sampler"), offset=len(trials) + i)
            with warnings.catch_warnings():  # heartbeats are ours, not study.optimize's
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                trial = study.ask(space)
            if JOB not in trial.user_attrs:
                trial.set_user_attr(JOB, str(trial.number))
            if heartbeat_interval(study):  # from its first moment: a worker killed now shows
                study._storage.record_heartbeat(trial._trial_id)
            asked.append(trial)
    return asked


@contextlib.contextmanager
def heartbeats(study: optuna.Study, trials: Sequence[Trial]) -> Iterator[None]:
    """While the block runs, record the trials' heartbeats (RDB storages with heartbeats)."""
    storage, interval = study._storage, heartbeat_interval(study)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            for trial in trials:
                storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def tell(study: optuna.Study, trial: Trial, ran: bool, status: str | None, value: Any) -> None:
    """Tell the trial's outcome: its job crashed (not `ran`): failed; its run's metrics.json
    status is pruned: pruned; otherwise the objective value the job returned."""
    if not ran:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    elif status == "pruned":
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
    elif isinstance(value, Sequence):  # a multi-objective search: one value per objective
        study.tell(trial, [float(v) for v in value], skip_if_finished=True)
    else:
        study.tell(trial, float(value), skip_if_finished=True)


def run_dir_of(trial: FrozenTrial, sweep_dir: str | Path) -> str:
    """The trial's job dir in the sweep dir."""
    return str(Path(sweep_dir) / trial.user_attrs.get(JOB, str(trial.number)))


def results(study: optuna.Study, settings: Mapping[str, Any], objective: str | Sequence[str],
            sweep_dir: str | Path) -> dict[str, Any]:
    """optimization_results.yaml: the study, its trials by state, the best trial and its dir
    (several objectives: the Pareto front's trials, fastest first, each with its values,
    params and dir)."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.system_attrs.get(STALE)]
    states = Counter(t.state.name.lower() for t in trials)
    out: dict[str, Any] = {
        "name": "optuna_study", "study_name": study.study_name,
        "storage": shown(settings["storage"]), "n_trials": len(trials),
        "trials": {state: states.get(state, 0) for state in
                   ("complete", "pruned", "fail", "running", "waiting")}}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not isinstance(objective, str):
        names, ways = list(objective), directions(list(objective))
        def order(t: FrozenTrial) -> list[float]:  # the last objective first, best first
            pairs = zip(t.values, ways, strict=True)
            return [v if way == "minimize" else -v for v, way in reversed(list(pairs))]

        front = sorted(study.best_trials if complete else [], key=order)
        return out | {"objectives": names, "directions": ways, "best_trials": [
            {"trial": t.number, "values": dict(zip(names, t.values, strict=True)),
             "params": dict(t.params), "run_dir": run_dir_of(t, sweep_dir)} for t in front]}
    out |= {"objective": objective, "direction": settings["direction"],
            "best_trial": None, "best_value": None, "best_params": None, "best_run_dir": None}
    if complete:
        best = study.best_trial
        out |= {"best_trial": best.number, "best_value": best.value,
                "best_params": dict(best.params),
                "best_run_dir": run_dir_of(best, sweep_dir)}
    return out
