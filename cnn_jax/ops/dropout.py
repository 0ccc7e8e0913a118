"""Dropout: inverted (rescale in training) or Nielsen's (scale by 1-p at evaluation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

FORMS = ("inverted", "nielsen")


def dropout(
    x: jax.Array,
    rate: float,
    key: jax.Array | None,
    *,
    train: bool,
    form: str = "inverted",
) -> jax.Array:
    """Zero each entry with probability `rate` in training.

    inverted: training keeps survivors scaled by 1/(1-rate); evaluation is the identity.
    nielsen (network3.py): training keeps survivors unscaled; evaluation multiplies by 1-rate.
    Both have the same expectation in training and evaluation.
    """
    if form not in FORMS:
        raise ValueError(f"dropout form={form!r} is not one of {', '.join(FORMS)}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate={rate!r} must be in [0, 1)")
    if rate == 0.0:
        return x
    keep = 1.0 - rate
    if not train:
        return x if form == "inverted" else x * jnp.asarray(keep, x.dtype)
    if key is None:
        raise ValueError("dropout in training needs a PRNG key")
    mask = jax.random.bernoulli(key, keep, x.shape)
    kept = x / keep if form == "inverted" else x
    return jnp.where(mask, kept, jnp.zeros_like(x))
