"""The sweeper's settings (`hydra.sweeper.*`), registered as `hydra/sweeper=optuna_study`.

No `from __future__ import annotations`: Hydra's plugin scan runs this module unregistered,
where dataclasses cannot resolve string annotations (and OmegaConf needs the types).
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class OptunaStudySweeperConf:
    _target_: str = "hydra_plugins.cnn_jax_optuna.sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sweeper builds the sampler and pruner (a seed per trial)
    # a single objective (`optimized_metric: val_acc`) is maximised; a list of objectives
    # (`[val_acc, train_seconds]`) has each its own direction (cnn_jax.results.objective)
    direction: str = "maximize"
    study_name: str = "cnn_jax"  # the workers of one search share the study of this name
    # null: in memory (this process only); an RDB URL: sqlite:///FILE (one machine),
    # postgresql://USER@HOST:PORT/DB (a cluster); journal:FILE (Optuna's JournalFileBackend)
    storage: Optional[str] = None  # noqa: UP045
    n_trials: int = 20  # trials of the study in total, over all its workers and reruns
    n_jobs: int = 1  # trials launched at once (run in parallel with hydra/launcher=joblib)
    # RDB storages: a worker records each running trial's heartbeat every this many seconds; a
    # running trial without one for twice as long (its worker was killed) is run again
    heartbeat_interval: int = 60
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler"})
    # each epoch's validation accuracy is reported to the trial; null: no pruning
    pruner: Any = field(default_factory=lambda: {"_target_": "optuna.pruners.MedianPruner"})
    params: dict[str, str] = field(default_factory=dict)  # key: Hydra sweep (interval, choice)
    # trials to run first, each {swept key: value} (e.g. the current recipe), queued when the
    # study is created (a rerun of a started study queues none)
    enqueue: list[Any] = field(default_factory=list)


ConfigStore.instance().store(group="hydra/sweeper", name="optuna_study",
                             node=OptunaStudySweeperConf, provider="cnn_jax")
