"""Pure array functions on NHWC arrays: no Flax, no config.

The names below are imported from their submodules on first use, so that `cnn_jax.ops.geometry`
(plain integers) and the config's checks load without JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES: dict[str, tuple[str, ...]] = {
    "cnn_jax.ops.activations": ("ACTIVATIONS", "activation", "register_activation"),
    "cnn_jax.ops.conv": ("conv2d",),
    "cnn_jax.ops.dropout": ("dropout",),
    "cnn_jax.ops.pooling": ("POOLS", "avg_pool", "l2_pool", "lp_pool", "max_pool", "pool",
                            "register_pool"),
    "cnn_jax.ops.geometry": ("output_size",),
    "cnn_jax.ops.windows": ("window_slices",),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import a name from its submodule on first access, then cache it here."""
    if name not in _WHERE:
        raise AttributeError(f"module 'cnn_jax.ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
