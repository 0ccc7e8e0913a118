"""Stochastic pooling (Zeiler & Fergus, 2013) as a plugin: importing it registers pooling kind
"stochastic". CLI: python -m experiments.train 'plugins=[examples.stochastic_pool]'
pooling.kind=stochastic activation=relu model.conv.0.order=act_pool (docs/api.md)

Training samples one activation per window with probability a_i / sum(a) (a = max(x, 0));
evaluation takes the probability-weighted average sum(a_i^2) / sum(a). All-zero windows give 0
with finite gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import cnn_jax
from cnn_jax.ops import window_slices


def windows(x: jax.Array, window: int, stride: int) -> jax.Array:
    """NHWC -> (N, OH, OW, C, window*window): every pooling window's values on the last axis."""
    return jnp.stack(window_slices(x, window, stride), axis=-1)


def stochastic_pool(
    x: jax.Array,
    window: int = 2,
    stride: int | None = None,
    *,
    key: jax.Array | None = None,
    train: bool = False,
) -> jax.Array:
    """Sample a_i with probability a_i / sum(a) per window (train), else sum(a^2) / sum(a)."""
    a = jnp.maximum(windows(x, window, window if stride is None else stride), 0.0)
    if train:
        if key is None:
            raise ValueError("stochastic pooling in training needs a PRNG key")
        cum = jnp.cumsum(jax.lax.stop_gradient(a), axis=-1)
        u = jax.random.uniform(key, (*a.shape[:-1], 1)) * cum[..., -1:]  # one draw per window
        pick = jnp.minimum((cum <= u).sum(-1, keepdims=True), a.shape[-1] - 1)  # inverse CDF
        return jnp.where(jnp.arange(a.shape[-1]) == pick, a, 0.0).sum(-1)  # all-zero window: 0
    total = a.sum(-1)
    positive = total > 0
    safe = jnp.where(positive, total, 1.0)  # keeps 0/0 out of the value and the gradient
    return jnp.where(positive, (a * a).sum(-1) / safe, 0.0)


cnn_jax.register_pool(
    "stochastic",
    lambda x, *, window, stride, p, key, train: stochastic_pool(
        x, window, stride, key=key, train=train
    ),
)


if __name__ == "__main__":  # a self-check: python examples/stochastic_pool.py
    x = jnp.array([[1.0, 3.0], [0.0, 0.0]]).reshape(1, 2, 2, 1)
    keys = jax.random.split(jax.random.PRNGKey(0), 1000)
    share = float((jax.vmap(lambda k: stochastic_pool(x, key=k, train=True))(keys) == 3.0).mean())
    print(f"train draws of 3.0: {share:.2f} (expected 0.75)")
    assert abs(share - 0.75) < 0.06
    print(f"eval value: {float(stochastic_pool(x)[0, 0, 0, 0]):.2f} (expected (1+9)/4 = 2.50)")
    zero, key = jnp.zeros((1, 2, 2, 1)), jax.random.PRNGKey(1)
    for train in (False, True):
        f = lambda z: stochastic_pool(z, key=key, train=train).sum()  # noqa: B023
        value, grad = jax.value_and_grad(f)(zero)
        print(f"all-zero window, train={train}: value {float(value)}, "
              f"gradient finite: {bool(jnp.isfinite(grad).all())}")  # fmt: skip
    print("registered pooling kinds:", ", ".join(cnn_jax.POOLS))
