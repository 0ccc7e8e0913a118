"""A nested config as one level of dotted keys: the one flattening of run identity and loggers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(config: Mapping[str, Any], prefix: str = "",
            index_lists: bool = True) -> dict[str, Any]:
    """{"optimizer": {"lr": 0.1}} -> {"optimizer.lr": 0.1}. With `index_lists`, a list of
    mappings (layers) gets an index per item ("model.conv.0.features", as loggers show it);
    without, it stays one value (as run identity compares a model's layers, whole)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}.", index_lists))
        elif (index_lists and isinstance(value, list | tuple) and value
              and isinstance(value[0], Mapping)):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{name}.{i}.", index_lists))
        else:
            out[name] = value
    return out
