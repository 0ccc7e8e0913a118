"""The project's Hydra config composed in-process, as the command line composes it.

compose_dictconfig(*overrides) -> the composed DictConfig (unvalidated);
compose_config(*overrides) -> the validated `cnn_jax.config.Config`;
not_sweeps(overrides) -> those that set one value (Hydra's own parser decides);
sweep_jobs(*overrides) -> each job's overrides, in job-number order, as `-m` launches them.
Used by the summary,
the reproduce planner, the benchmarks and the tests, so each reads the nets and budgets from
the same `conf/` files a run does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.overrides import CONF_DIR

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from cnn_jax.config import Config


def compose_dictconfig(*overrides: str, with_hydra: bool = False) -> DictConfig:
    """`conf/config.yaml` with `overrides` (e.g. "experiment=fast", "train.seeds=2"); with_hydra
    keeps the `hydra` node (sweeper, sweep dir), unresolved run-time fields and all."""
    from hydra import compose, initialize_config_dir

    import hydra_plugins.cnn_jax_schema  # noqa: F401  (the defaults' nodes, from cnn_jax.config)
    from experiments.plugins import load_cli_plugins

    load_cli_plugins(overrides)  # a plugin's models are options of the model group
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides),
                       return_hydra_config=with_hydra)


def compose_config(*overrides: str) -> Config:
    """The validated Config a run with these command-line overrides would use."""
    from cnn_jax.config import from_dictconfig

    return from_dictconfig(compose_dictconfig(*overrides))


def not_sweeps(overrides: tuple[str, ...] | list[str]) -> list[str]:
    """The overrides that set one value: `model=a,b` and `seed=range(3)` are sweeps, while
    `x=[1,2]` and `name='a,b'` are not. One Hydra cannot parse is kept (composing it reports it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    kept = []
    for override in overrides:
        try:
            (parsed,) = parser.parse_overrides([override])
        except HydraException:
            kept.append(override)
            continue
        if not parsed.is_sweep_override():
            kept.append(override)
    return kept


def sweep_jobs(*overrides: str, numbered: bool = True) -> list[list[str]]:
    """The task overrides of each job `python -m experiments.train -m *overrides` launches, job
    0 first, in the dirs SWEEP_DIR/0, /1, ...: the experiment's `hydra.sweeper.params`, then the
    command line, split by Hydra's basic sweeper itself (its `split_arguments`: a later value of
    a key replaces an earlier one; no sweep: one job). ValueError for what it cannot list: another
    sweeper (Optuna's trials are chosen as it runs), glob sweeps, job dirs not named by number."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from omegaconf import OmegaConf

    task = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    hydra = compose_dictconfig(*not_sweeps(overrides), with_hydra=True).hydra
    sweeper = str(hydra.sweeper.get("_target_", ""))
    if not sweeper.endswith(".BasicSweeper"):
        raise ValueError(f"hydra.sweeper {sweeper!r}: only the basic sweeper's jobs are known "
                         "before they run")
    subdir = OmegaConf.to_container(hydra.sweep, resolve=False).get("subdir")
    if numbered and subdir != "${hydra.job.num}":
        raise ValueError(f"hydra.sweep.subdir={subdir!r}: job dirs are found by number "
                         "(${hydra.job.num})")
    params = [f"{key}={value}" for key, value in (hydra.sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides([*params, *task])
    globbed = [o.input_line for o in parsed if o.value_type == ValueType.GLOB_CHOICE_SWEEP]
    if globbed:
        raise ValueError(f"{globbed[0]}: glob sweeps are not listed; name the choices")
    (jobs,) = BasicSweeper.split_arguments(parsed, None)
    return jobs
