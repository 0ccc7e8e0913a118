"""TrainState: parameters, optimizer state and step count as one pytree."""

from __future__ import annotations

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
