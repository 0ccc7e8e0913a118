"""2-D cross-correlation on NHWC inputs with HWIO kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def output_size(size: int, window: int, stride: int = 1, padding: str = "VALID") -> int:
    """Length of a conv or pool output along one axis (VALID floors, SAME is ceil(size/stride))."""
    if padding == "SAME":
        return -(-size // stride)
    if padding != "VALID":
        raise ValueError(f"padding={padding!r} is not one of VALID, SAME")
    return (size - window) // stride + 1


def conv2d(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    stride: int = 1,
    padding: str = "VALID",
) -> jax.Array:
    """out[n,j,k,o] = b[o] + sum_{l,m,i} w[l,m,i,o] x[n, j*s+l, k*s+m, i] (no kernel flip)."""
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding={padding!r} is not one of VALID, SAME")
    if stride < 1:
        raise ValueError(f"stride={stride!r} must be an integer >= 1")
    out = jax.lax.conv_general_dilated(
        x,
        w.astype(x.dtype),
        window_strides=(stride, stride),
        padding=padding,
        dimension_numbers=_DIMENSIONS,
    )
    return out if b is None else out + b.astype(out.dtype)


def conv2d_reference(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """Slow explicit-sum VALID cross-correlation, for tests."""
    kh, kw, _, _ = w.shape
    oh = output_size(x.shape[1], kh, stride)
    ow = output_size(x.shape[2], kw, stride)
    out = jnp.zeros((x.shape[0], oh, ow, w.shape[-1]), x.dtype)
    for l in range(kh):  # noqa: E741
        for m in range(kw):
            patch = x[:, l : l + stride * oh : stride, m : m + stride * ow : stride, :]
            out = out + jnp.einsum("nhwi,io->nhwo", patch, w[l, m])
    return out
