"""Flax Linen models built from ModelConfig."""

from cnn_jax.models.convnet import ConvNet, init_params
from cnn_jax.models.init import INIT_SCHEMES, LayerInit, register_init
from cnn_jax.models.summary import count_params, flops_per_image, format_table, layer_table

__all__ = [
    "INIT_SCHEMES", "ConvNet", "LayerInit", "count_params", "flops_per_image", "format_table",
    "init_params", "layer_table", "register_init",
]  # fmt: skip
