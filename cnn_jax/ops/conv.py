"""2-D cross-correlation on NHWC inputs with HWIO kernels.

Three implementations give the same numbers (up to float rounding):
- "xla": `lax.conv_general_dilated`, differentiated by JAX (XLA:CPU's kernel-gradient
  convolution is very slow: 5-10x the forward at minibatch 10, far worse at 128);
- "patches": im2col, the kernel-major patch matrix P[(l, m, c), (n, j, k)] = x[n, j*s+l, k*s+m, c]
  times the kernel matrix, differentiated by JAX (the kernel gradient P @ dy is a plain matmul);
- "auto" (default): the "xla" forward; a custom JVP routes both gradients through the patches:
  dW = P @ dy (a plain matmul) and dx = col2im(W dy) (XLA:CPU's input-gradient conv is 3-5x
  slower). Fastest on CPU at minibatch 10 and 128.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
IMPLS = ("auto", "xla", "patches")


def output_size(size: int, window: int, stride: int = 1, padding: str = "VALID") -> int:
    """Length of a conv or pool output along one axis (VALID floors, SAME is ceil(size/stride))."""
    if padding == "SAME":
        return -(-size // stride)
    if padding != "VALID":
        raise ValueError(f"padding={padding!r} is not one of VALID, SAME")
    return (size - window) // stride + 1


def _same_pad(size: int, window: int, stride: int) -> tuple[int, int]:
    """XLA's SAME padding (low, high) along one axis: the extra pixel goes to the high side."""
    total = max((output_size(size, window, stride, "SAME") - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _xla(x: jax.Array, w: jax.Array, stride: int, padding: str) -> jax.Array:
    return lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=_DIMENSIONS)


def patch_matrix(x: jax.Array, kh: int, kw: int, stride: int = 1, padding: str = "VALID"):
    """P of shape (kh*kw*C, N*OH*OW) with P[(l, m, c), (n, j, k)] = x_padded[n, j*s+l, k*s+m, c].

    Built from kw column shifts, then kh row shifts of those: kh + kw copies, not kh * kw.
    """
    n, h, w, c = x.shape
    if padding == "SAME":
        x = jnp.pad(x, ((0, 0), _same_pad(h, kh, stride), _same_pad(w, kw, stride), (0, 0)))
    oh, ow = output_size(x.shape[1], kh, stride), output_size(x.shape[2], kw, stride)
    xt = jnp.moveaxis(x, 3, 0)  # (C, N, H, W)
    cols = jnp.stack([xt[..., j : j + stride * (ow - 1) + 1 : stride] for j in range(kw)])
    rows = jnp.stack([cols[:, :, :, i : i + stride * (oh - 1) + 1 : stride] for i in range(kh)])
    return rows.reshape(kh * kw * c, n * oh * ow), (n, oh, ow)  # rows: (kh, kw, C, N, OH, OW)


def _patches(x: jax.Array, w: jax.Array, stride: int, padding: str) -> jax.Array:
    kh, kw, c, o = w.shape
    p, (n, oh, ow) = patch_matrix(x, kh, kw, stride, padding)
    y = lax.dot_general(p, w.reshape(kh * kw * c, o), (((0,), (0,)), ((), ())))
    return y.reshape(n, oh, ow, o)


@partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _auto(x: jax.Array, w: jax.Array, stride: int, padding: str) -> jax.Array:
    return _xla(x, w, stride, padding)


@partial(_auto.defjvp, symbolic_zeros=True)
def _auto_jvp(stride: int, padding: str, primals, tangents):
    """Tangent P(dx)^T w + P(x)^T dw; reverse mode gives dx = col2im(w dy) and dW = P(x) @ dy."""
    (x, w), (dx, dw) = primals, tangents
    y = _xla(x, w, stride, padding)
    terms = [] if isinstance(dx, SymbolicZero) else [_patches(dx, w, stride, padding)]
    if not isinstance(dw, SymbolicZero):
        terms.append(_patches(x, dw, stride, padding))
    return y, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(y)


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
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding={padding!r} is not one of VALID, SAME")
    if stride < 1:
        raise ValueError(f"stride={stride!r} must be an integer >= 1")
    if impl not in _IMPL_FNS:
        raise ValueError(f"impl={impl!r} is not one of {', '.join(IMPLS)}")
    out = _IMPL_FNS[impl](x, w.astype(x.dtype), stride, padding)
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
