"""The search space: `hydra.sweeper.params` and the command line's overrides, in Hydra's override
grammar, as Optuna distributions (the swept keys) and overrides every trial gets (the rest).

interval(a, b) -> a float in [a, b] (an int under tag(int, ...)), log-scaled under tag(log, ...);
choice(x, y) or x,y -> one of them; range(a, b[, step]) -> one of its values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

from cnn_jax.config import ConfigError


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override."""
    import optuna.distributions as od

    value = override.value()
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if "int" in value.tags:
            return od.IntDistribution(int(value.start), int(value.end), log=log)
        return od.FloatDistribution(value.start, value.end, log=log)
    if isinstance(value, ChoiceSweep):
        return od.CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, RangeSweep):
        return od.CategoricalDistribution(list(override.sweep_iterator()))
    raise ConfigError(f"hydra.sweeper.params: {override.input_line!r} is not a sweep "
                      "(interval, choice, range)")


def search_space(params: dict[str, Any], arguments: Iterable[str]) -> tuple[dict, list[str]]:
    """({key: distribution} of the swept keys, [the fixed overrides]); a command-line argument
    replaces the params' entry of its key."""
    parser = OverridesParser.create()
    lines = {k: f"{k}={v}" for k, v in params.items()}
    for override in parser.parse_overrides(list(arguments)):
        lines[override.get_key_element()] = override.input_line
    space, fixed = {}, []
    for override in parser.parse_overrides(list(lines.values())):
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed


def keys_of(overrides: Iterable[str]) -> set[str]:
    """The keys the overrides set."""
    return {o.get_key_element() for o in OverridesParser.create().parse_overrides(list(overrides))}


def trial_overrides(params: dict[str, Any]) -> list[str]:
    """A trial's sampled values as overrides (strings quoted for Hydra's grammar)."""
    return [f"{k}={_literal(v)}" for k, v in params.items()]


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)
