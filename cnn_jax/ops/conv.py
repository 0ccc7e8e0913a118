"""2-D cross-correlation on NHWC inputs with HWIO kernels.

Two implementations give the same numbers (up to float rounding):
- "xla": `lax.conv_general_dilated`, differentiated by JAX (cuDNN on GPU; on XLA:CPU its
  gradient convolutions are 5-10x slower than the forward, inside a scanned epoch far worse);
- "patches": im2col in NHWC order, the patch matrix P[(n, j, k), (l, m, c)] =
  x[n, j*s+l, k*s+m, c] times the kernel matrix, differentiated by JAX: the kernel gradient
  P^T dy is one matmul and the input gradient a sum of shifted slices, no transposes.
"auto" (default) is "patches" on CPU and "xla" on GPU/TPU (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from cnn_jax.ops.windows import PADDINGS, output_size, window_slices

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
IMPLS = ("auto", "xla", "patches")


def _same_pad(size: int, window: int, stride: int) -> tuple[int, int]:
    """XLA's SAME padding (low, high) along one axis: the extra pixel goes to the high side."""
    total = max((output_size(size, window, stride, "SAME") - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _xla(x: jax.Array, w: jax.Array, stride: int, padding: str) -> jax.Array:
    return lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=_DIMENSIONS)


def patch_matrix(x: jax.Array, kh: int, kw: int, stride: int = 1, padding: str = "VALID"):
    """P of shape (N*OH*OW, kh*kw*C) with P[(n, j, k), (l, m, c)] = x_padded[n, j*s+l, k*s+m, c]."""
    n, h, w, c = x.shape
    if padding == "SAME":
        x = jnp.pad(x, ((0, 0), _same_pad(h, kh, stride), _same_pad(w, kw, stride), (0, 0)))
    shifts = window_slices(x, (kh, kw), stride)
    oh, ow = shifts[0].shape[1:3]
    return jnp.stack(shifts, axis=3).reshape(n * oh * ow, kh * kw * c), (n, oh, ow)


def _patches(x: jax.Array, w: jax.Array, stride: int, padding: str) -> jax.Array:
    kh, kw, c, o = w.shape
    p, (n, oh, ow) = patch_matrix(x, kh, kw, stride, padding)
    return (p @ w.reshape(kh * kw * c, o)).reshape(n, oh, ow, o)


def _auto(x: jax.Array, w: jax.Array, stride: int, padding: str) -> jax.Array:
    cpu = jax.default_backend() == "cpu"
    return (_patches if cpu else _xla)(x, w, stride, padding)


_IMPL_FNS = {"auto": _auto, "xla": _xla, "patches": _patches}


def conv2d(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    stride: int = 1,
    padding: str = "VALID",
    impl: str = "auto",
) -> jax.Array:
    """out[n,j,k,o] = b[o] + sum_{l,m,i} w[l,m,i,o] x[n, j*s+l, k*s+m, i] (no kernel flip)."""
    if padding not in PADDINGS:
        raise ValueError(f"padding={padding!r} is not one of {', '.join(PADDINGS)}")
    if stride < 1:
        raise ValueError(f"stride={stride!r} must be an integer >= 1")
    if impl not in _IMPL_FNS:
        raise ValueError(f"impl={impl!r} is not one of {', '.join(IMPLS)}")
    out = _IMPL_FNS[impl](x, w.astype(x.dtype), stride, padding)
    return out if b is None else out + b.astype(out.dtype)
