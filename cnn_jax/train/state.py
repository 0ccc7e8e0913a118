"""TrainState (parameters, optimizer state, step) and Progress (where a fit stands)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class TrainState(NamedTuple):
    """Parameters, optimizer state and step count (stacked on a leading axis for many seeds)."""

    params: Any
    opt_state: Any
    step: jax.Array


def create_state(params: Any, tx: optax.GradientTransformation) -> TrainState:
    """A fresh TrainState at step 0."""
    return TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))


@dataclass
class Progress:
    """Where a fit stands after an epoch: enough to checkpoint it and to resume from it."""

    state: TrainState
    best_params: Any
    next_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)
