"""Pure array functions on NHWC arrays: no Flax, no config."""

from cnn_jax.ops.activations import ACTIVATIONS, activation, register_activation
from cnn_jax.ops.conv import conv2d
from cnn_jax.ops.dropout import dropout
from cnn_jax.ops.pooling import (
    POOLS,
    PoolKind,
    avg_pool,
    l2_pool,
    lp_pool,
    max_pool,
    pool,
    register_pool,
)
from cnn_jax.ops.windows import output_size, window_slices

__all__ = [
    "ACTIVATIONS",
    "POOLS",
    "PoolKind",
    "activation",
    "avg_pool",
    "conv2d",
    "dropout",
    "l2_pool",
    "lp_pool",
    "max_pool",
    "output_size",
    "pool",
    "register_activation",
    "register_pool",
    "window_slices",
]
