"""Flax Linen layers: ConvBlock (conv -> pool -> act, order configurable), DenseBlock, Output."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_jax.config import ConvBlockConfig
from cnn_jax.models.init import layer_init
from cnn_jax.ops.activations import activation
from cnn_jax.ops.conv import conv2d
from cnn_jax.ops.dropout import dropout
from cnn_jax.ops.pooling import pool, pool_kind


def _rng(module: nn.Module, train: bool) -> jax.Array | None:
    return module.make_rng("dropout") if train and module.has_rng("dropout") else None


class ConvBlock(nn.Module):
    """Shared-weight feature maps: cross-correlate, pool, add the shared bias, activate.

    order="pool_act" pools before bias and activation (network3.py); "act_pool" after.
    `impl` is conv2d's implementation ("auto", "patches" or "xla").
    Sows the conv maps ("conv") and the block output ("out") into "intermediates".
    """

    cfg: ConvBlockConfig
    act: str
    init: str
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c, k = self.cfg, self.cfg.kernel
        kind = pool_kind(c.pool.kind)
        inits = layer_init(self.init, "conv", c.features * k * k / kind.area(c.pool.window))
        w = self.param("kernel", inits.kernel, (k, k, x.shape[-1], c.features))
        b = self.param("bias", inits.bias, (c.features,))
        act = activation(self.act)

        def pooled(y: jax.Array) -> jax.Array:
            return pool(y, c.pool.kind, window=c.pool.window, stride=c.pool.stride, p=c.pool.p,
                        key=_rng(self, train), train=train)

        y = conv2d(x, w, stride=c.stride, padding=c.padding, impl=self.impl)
        if c.order == "pool_act":
            self.sow("intermediates", "conv", act(y + b))
            out = act(pooled(y) + b)
        else:
            y = act(y + b)
            self.sow("intermediates", "conv", y)
            out = pooled(y)
        self.sow("intermediates", "out", out)
        return out


class DenseBlock(nn.Module):
    """Fully connected layer with dropout on its input; `act=None` gives logits."""

    units: int
    rate: float
    act: str | None
    init: str
    dropout_form: str = "inverted"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = dropout(x, self.rate, _rng(self, train) if self.rate else None, train=train,
                    form=self.dropout_form)
        inits = layer_init(self.init, "dense" if self.act else "output", self.units)
        w = self.param("kernel", inits.kernel, (x.shape[-1], self.units))
        b = self.param("bias", inits.bias, (self.units,))
        y = jnp.dot(x, w.astype(x.dtype)) + b.astype(x.dtype)
        return activation(self.act)(y) if self.act else y
