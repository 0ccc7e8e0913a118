"""Flax Linen models: ConvNet from ModelConfig, and a registry of models (your own included)."""

from cnn_jax.models.convnet import ConvNet
from cnn_jax.models.forward import apply, init_params, logits, predict
from cnn_jax.models.init import INIT_SCHEMES, LayerInit, register_init
from cnn_jax.models.registry import MODELS, ModelEntry, make_model, register_model
from cnn_jax.models.summary import count_params, flops_per_image, format_table, layer_table

__all__ = [
    "INIT_SCHEMES", "MODELS", "ConvNet", "LayerInit", "ModelEntry", "apply", "count_params",
    "flops_per_image", "format_table", "init_params", "layer_table", "logits", "make_model",
    "predict", "register_init", "register_model",
]  # fmt: skip
