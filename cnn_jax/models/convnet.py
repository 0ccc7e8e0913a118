"""ConvNet: conv blocks, flatten, FC layers, softmax layer; built from a ModelConfig."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_jax.config import ModelConfig
from cnn_jax.models.blocks import ConvBlock, DenseBlock


class ConvNet(nn.Module):
    """Nielsen's chapter-6 networks; with no conv blocks it is a fully connected net.

    Takes NHWC images (uint8 in [0, 255] or floats in [0, 1]) and returns logits.
    """

    cfg: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = self.cfg
        if x.dtype == jnp.uint8:
            x = x.astype(jnp.float32) / 255.0
        for i, block in enumerate(c.conv):
            x = ConvBlock(block, c.activation, c.init, c.conv_impl, name=f"conv{i}")(x, train)
        x = x.reshape(x.shape[0], -1)
        for i, layer in enumerate(c.dense):
            x = DenseBlock(layer.units, layer.dropout, c.activation, c.init, c.dropout_form,
                           name=f"dense{i}")(x, train)
        return DenseBlock(c.num_classes, c.out_dropout, None, c.init, c.dropout_form,
                          name="output")(x, train)
