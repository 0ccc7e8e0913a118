"""TrainState (parameters, optimizer state, step) and Progress (where a fit stands)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class TrainState(NamedTuple):
    """Parameters, optimizer state and step count (stacked on a leading axis for many seeds)."""

    params: Any
    opt_state: Any
    step: jax.Array


def create_state(params: Any, tx: optax.GradientTransformation) -> TrainState:
    """A fresh TrainState at step 0."""
    return TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))


@dataclass(repr=False)
class Progress:
    """Where a fit stands after an epoch: enough to checkpoint it and to resume from it.

    epochs_done: the number of epochs done (0 when fresh); epochs count from 1, so it is also
    the last done epoch's number, history[-1]["epoch"].
    """

    state: TrainState
    best_params: Any
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        leaves = jax.tree_util.tree_leaves(self.state.params)
        seeds = leaves[0].shape[0] if leaves and leaves[0].ndim else 1
        last = self.history[-1] if self.history else None
        val = "" if last is None else f", last val_acc {last.get('val_acc')}"
        return (f"Progress(epochs done {self.epochs_done}, seeds {seeds}, "
                f"{sum(np.size(a) for a in leaves):,} parameter values{val})")
