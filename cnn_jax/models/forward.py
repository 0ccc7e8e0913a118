"""A model's parameters and forward pass, whether or not it keeps state beside its parameters.

For a model without mutable collections the parameters are `variables["params"]` (a ConvNet's
layout); for one with them (e.g. BatchNorm's `batch_stats`) they are the variables dict
{"params": ..., "batch_stats": ...}, so states, checkpoints, seeds and the best-validation
copies carry the statistics with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_jax.models.registry import mutable_of


def init_params(model: nn.Module, key: jax.Array, input_shape: Sequence[int] | None = None) -> Any:
    """Parameters of `model` for one seed's key, for images of `input_shape` (H, W, C; default:
    the model config's input_shape)."""
    shape = tuple(input_shape) if input_shape is not None else tuple(model.cfg.input_shape)
    variables = model.init({"params": key}, jnp.zeros((1, *shape), jnp.float32))
    mutable = mutable_of(model)
    if not mutable:
        return variables["params"]
    return {"params": variables["params"], **{c: variables[c] for c in mutable}}


def apply(model: nn.Module, params: Any, x: jax.Array, train: bool = False,
          rngs: dict[str, jax.Array] | None = None) -> tuple[jax.Array, Any]:
    """(logits, params after the pass): in training a model's mutable collections are updated;
    otherwise `params` come back as they were. uint8 images reach the model as floats in [0, 1].
    """
    if x.dtype == jnp.uint8:
        x = x.astype(jnp.float32) / 255.0
    mutable = mutable_of(model)
    if not mutable:
        return model.apply({"params": params}, x, train=train, rngs=rngs), params
    if not train:
        return model.apply(params, x, train=False, rngs=rngs), params
    logits, updates = model.apply(params, x, train=True, rngs=rngs, mutable=list(mutable))
    return logits, {**params, **updates}


def logits(model: nn.Module, params: Any, x: jax.Array) -> jax.Array:
    """Evaluation-mode logits of `model` (any registered model)."""
    return apply(model, params, x)[0]


def predict(model: nn.Module, stacked_params: Any, x: Any, batch: int = 1000,
            fn: Any = None) -> Any:
    """`fn(logits)` (default: the predicted class) of every seed's network (params stacked on
    a leading seed axis) for images `x`, in batches: [seeds, n, ...] numpy."""
    import numpy as np

    fn = fn or (lambda z: jnp.argmax(z, -1))
    batched = jax.jit(jax.vmap(lambda p, xb: fn(logits(model, p, xb)), in_axes=(0, None)))
    return np.concatenate([np.asarray(batched(stacked_params, x[i : i + batch]))
                           for i in range(0, len(x), batch)], axis=1)
