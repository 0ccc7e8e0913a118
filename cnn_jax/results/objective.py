"""What a run returns to a Hydra sweeper: a validation metric, worst when the run did not finish ok.

Only validation metrics can be optimised, so a search never tunes on the test set. A failed or
diverged run scores the worst value, which a sweeper ranks last instead of stopping on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cnn_jax.config import ConfigError

# name in metrics.json -> the value of a run that failed or diverged (all are maximised)
OBJECTIVES: dict[str, float] = {"val_acc": 0.0}
DIRECTION = "maximize"  # a search's direction (Optuna's word) for every objective


def check_metric(name: Any) -> str:
    """`name` if it can be optimised, else a one-line ConfigError."""
    if name not in OBJECTIVES:
        raise ConfigError(f"optimized_metric={name!r} is not one of {', '.join(OBJECTIVES)} "
                          "(a search tunes on validation, never on test)")
    return name


def objective(metrics: Mapping[str, Any] | None, name: str = "val_acc") -> float:
    """The run's `name` (mean over its seeds), or the worst value unless it finished ok."""
    worst = OBJECTIVES[check_metric(name)]
    if not metrics or metrics.get("status") != "ok":
        return worst
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else worst
