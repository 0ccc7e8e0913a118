"""Plurality vote of several networks (a leading seed axis of parameters)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def seed_predictions(model: nn.Module, stacked_params: Any, x: jax.Array, batch: int = 1000):
    """Predicted classes [seeds, n] of every seed's network, in batches."""
    apply = jax.jit(jax.vmap(lambda p, xb: jnp.argmax(model.apply({"params": p}, xb), -1),
                             in_axes=(0, None)))
    return np.concatenate([np.asarray(apply(stacked_params, x[i : i + batch]))
                           for i in range(0, len(x), batch)], axis=1)


def plurality_vote(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """The most-voted class per column of [voters, n] predictions; ties go to the lower class."""
    counts = np.stack([(predictions == c).sum(0) for c in range(num_classes)])
    return counts.argmax(0)


def vote_accuracy(model: nn.Module, stacked_params: Any, x: Any, y: Any) -> float:
    """Test accuracy of the plurality vote of all seeds' networks."""
    votes = plurality_vote(seed_predictions(model, stacked_params, jnp.asarray(x)),
                           model.cfg.num_classes)
    return float((votes == np.asarray(y)).mean())
