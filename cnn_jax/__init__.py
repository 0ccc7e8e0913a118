"""cnn-jax: Nielsen's chapter-6 convnets in JAX/Flax; the stable public API, loaded on first use.

`import cnn_jax` is nearly free; a name is imported from its submodule when first touched, so
data-only code (`cnn_jax.data`) never pulls in JAX, and nothing here imports TFDS, Hydra,
pandas or matplotlib. See docs/api.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SOURCES: dict[str, tuple[str, ...]] = {
    "cnn_jax.ops": (
        "ACTIVATIONS", "POOLS", "PoolKind", "activation", "avg_pool", "conv2d", "dropout",
        "l2_pool", "lp_pool", "max_pool", "pool", "register_activation", "register_pool",
    ),
    "cnn_jax.config": (
        "Config", "ConfigError", "ConvBlockConfig", "DataConfig", "DenseConfig", "ModelConfig",
        "OptimizerConfig", "PoolConfig", "TrainConfig", "from_mapping",
    ),
    "cnn_jax.models": (
        "INIT_SCHEMES", "MODELS", "ConvNet", "LayerInit", "ModelEntry", "count_params",
        "format_table", "init_params", "layer_table", "make_model", "predict", "register_init",
        "register_model",
    ),
    "cnn_jax.train": (
        "FitResult", "OPTIMIZERS", "Program", "Progress", "TrainState", "build",
        "count_compiles", "create_state", "enable_compile_cache", "epoch_batches", "fit",
        "init_states", "make_eval_step", "make_optimizer", "make_train_chunk",
        "make_train_epoch", "make_train_step", "register_optimizer", "run_epochs",
    ),
    "cnn_jax.data": (
        "DATASETS", "DataError", "Dataset", "Splits", "dataset_of", "expand_shifts",
        "load_splits", "register_dataset",
    ),
}  # fmt: skip
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted([*_WHERE, "__version__"])


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first access, then cache it here."""
    if name not in _WHERE:
        raise AttributeError(f"module 'cnn_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Module attributes plus every public name, loaded or not."""
    return sorted({*globals(), *__all__})
