"""Initialisation schemes by name: each gives (kernel_init, bias_init) per layer kind.

nielsen (network3.py): weights N(0, 1/n_out) with n_out = units for FC layers and
features * kernel**2 / pool_area for conv layers; biases N(0, 1); softmax layer all zeros.
lecun: LeCun-normal weights (variance 1/fan_in), zero biases.
he: He-normal weights (variance 2/fan_in) for hidden layers, LeCun-normal softmax, zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
from flax.linen import initializers

Initializer = Callable[..., jax.Array]


class LayerInit(NamedTuple):
    """A layer's kernel and bias initializers, as an init scheme returns them."""

    kernel: Initializer
    bias: Initializer


def _normal(std: float) -> Initializer:
    return initializers.normal(stddev=std)


def _nielsen(layer: str, n_out: float) -> LayerInit:
    if layer == "output":
        return LayerInit(initializers.zeros, initializers.zeros)
    return LayerInit(_normal(math.sqrt(1.0 / n_out)), _normal(1.0))


def _lecun(layer: str, n_out: float) -> LayerInit:
    return LayerInit(initializers.lecun_normal(), initializers.zeros)


def _he(layer: str, n_out: float) -> LayerInit:
    if layer == "output":
        return _lecun(layer, n_out)
    return LayerInit(initializers.he_normal(), initializers.zeros)


INIT_SCHEMES: dict[str, Callable[[str, float], LayerInit]] = {
    "nielsen": _nielsen,
    "lecun": _lecun,
    "he": _he,
}


def register_init(name: str, scheme: Callable[[str, float], LayerInit]) -> None:
    """Make `scheme(layer, n_out) -> LayerInit` available as init scheme `name`."""
    INIT_SCHEMES[name] = scheme


def layer_init(scheme: str, layer: str, n_out: float) -> LayerInit:
    """Initializers for a layer of kind 'conv', 'dense' or 'output' with Nielsen's n_out."""
    try:
        return INIT_SCHEMES[scheme](layer, n_out)
    except KeyError:
        raise ValueError(f"init={scheme!r} is not one of {', '.join(INIT_SCHEMES)}") from None
