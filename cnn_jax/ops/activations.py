"""Activation functions by name."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "linear": lambda x: x,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
}


def activation(name: str) -> Activation:
    """The activation registered under `name`."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation={name!r} is not one of {', '.join(ACTIVATIONS)}") from None


def register_activation(name: str, fn: Activation) -> None:
    """Make `fn` available as activation `name` (Python and `activation.name=` on the CLI)."""
    ACTIVATIONS[name] = fn
