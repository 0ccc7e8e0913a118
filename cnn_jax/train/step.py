"""Loss, train step and eval step: pure functions of (state, batch, key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from cnn_jax.models.forward import apply
from cnn_jax.models.registry import mutable_of
from cnn_jax.train.state import TrainState

Metrics = dict[str, jax.Array]


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Mean negative log-likelihood of the softmax (Nielsen's log-likelihood cost)."""
    if label_smoothing:
        targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
        return optax.softmax_cross_entropy(logits, targets).mean()
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def make_train_step(
    model: nn.Module, tx: optax.GradientTransformation, label_smoothing: float = 0.0
) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """train_step(state, x, y, key) -> (state, {"loss", "accuracy"}); jit it or scan it.

    A model's mutable collections (e.g. batch_stats) take the values of its training pass."""
    mutable = mutable_of(model)

    def loss_fn(params: Any, x: jax.Array, y: jax.Array, key: jax.Array):
        logits, after = apply(model, params, x, train=True, rngs={"dropout": key})
        return cross_entropy(logits, y, label_smoothing), (logits, after)

    def train_step(state: TrainState, x: jax.Array, y: jax.Array, key: jax.Array):
        (loss, (logits, after)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, x, y, key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if mutable:
            params = {**params, **{c: after[c] for c in mutable}}
        accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
        return TrainState(params, opt_state, state.step + 1), {"loss": loss, "accuracy": accuracy}

    return train_step


def make_eval_step(model: nn.Module) -> Callable[[Any, jax.Array, jax.Array, jax.Array], Metrics]:
    """eval_step(params, x, y, weight) -> summed {"correct", "loss", "count"} over weighted rows."""

    def eval_step(params: Any, x: jax.Array, y: jax.Array, weight: jax.Array) -> Metrics:
        logits = apply(model, params, x)[0]
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
        return {"correct": (correct * weight).sum(), "loss": (nll * weight).sum(),
                "count": weight.sum()}

    return eval_step
