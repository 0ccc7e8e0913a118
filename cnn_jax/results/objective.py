"""What a run returns to a Hydra sweeper: its validation metric (or metrics), each at its worst
value when the run did not finish ok.

`optimized_metric` names one objective (a single-objective search) or a list of them (a
multi-objective search, e.g. `[val_acc, train_seconds]`: accuracy against time). Only validation
metrics and costs can be optimised, so a search never tunes on the test set. A failed or diverged
run scores each objective's worst value, which a sweeper ranks last instead of stopping on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from cnn_jax.config import ConfigError


class Objective(NamedTuple):
    direction: str  # Optuna's word: maximize or minimize
    worst: float  # the value of a run that failed or diverged


# name in metrics.json -> its direction and the value of a run that failed or diverged
OBJECTIVES: dict[str, Objective] = {
    "val_acc": Objective("maximize", 0.0),
    "train_seconds": Objective("minimize", math.inf),  # training and evaluation, not compile
}
DIRECTION = "maximize"  # the direction of a single-objective search (val_acc)


def metric_names(spec: Any) -> tuple[str, ...]:
    """The objectives `optimized_metric` names (a name or a list of distinct names); a one-line
    ConfigError for anything else."""
    names = (spec,) if isinstance(spec, str) else tuple(spec) if isinstance(
        spec, Sequence) else (spec,)
    for name in names:
        if not isinstance(name, str) or name not in OBJECTIVES:
            raise ConfigError(f"optimized_metric={name!r} is not one of {', '.join(OBJECTIVES)} "
                              "(a search tunes on validation, never on test)")
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"optimized_metric={list(names)!r}: name each objective once")
    return names


def check_metric(spec: Any) -> str | tuple[str, ...]:
    """`spec` if it can be optimised (a name, or a tuple of names), else a one-line
    ConfigError."""
    names = metric_names(spec)
    return names[0] if isinstance(spec, str) else names


def directions(spec: Any) -> list[str]:
    """The Optuna direction of each objective `spec` names."""
    return [OBJECTIVES[name].direction for name in metric_names(spec)]


def objective(metrics: Mapping[str, Any] | None, spec: Any = "val_acc") -> Any:
    """The run's value of each objective (a float for one name, a list for a list; a mean over
    its seeds), each at its worst unless the run finished ok."""
    values = [_value(metrics, name) for name in metric_names(spec)]
    return values[0] if isinstance(spec, str) else values


def _value(metrics: Mapping[str, Any] | None, name: str) -> float:
    worst = OBJECTIVES[name].worst
    if not metrics or metrics.get("status") != "ok":
        return worst
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else worst
