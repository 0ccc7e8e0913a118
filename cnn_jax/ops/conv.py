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


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """(low, high) zero padding that makes a SAME output ceil(size / stride) long."""
    total = max((output_size(size, window, stride, "SAME") - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _patches(x: jax.Array, kh: int, kw: int, stride: int) -> jax.Array:
    """[N, oh, ow, kh*kw*C] windows of x, ordered (row, column, channel) like an HWIO kernel."""
    oh, ow = output_size(x.shape[1], kh, stride), output_size(x.shape[2], kw, stride)
    span_h, span_w = stride * (oh - 1) + 1, stride * (ow - 1) + 1
    cols = [x[:, l : l + span_h : stride, m : m + span_w : stride, :]
            for l in range(kh) for m in range(kw)]  # noqa: E741
    return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def conv2d(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    stride: int = 1,
    padding: str = "VALID",
    impl: str | None = None,
) -> jax.Array:
    """out[n,j,k,o] = b[o] + sum_{l,m,i} w[l,m,i,o] x[n, j*s+l, k*s+m, i] (no kernel flip).

    impl="patches" gathers the windows with strided slices and does one matmul; "xla" calls
    lax.conv_general_dilated. None picks "patches" on CPU, where XLA's convolution inside a
    scanned training loop runs about 15x slower (docs/benchmarks.md), and "xla" elsewhere.
    """
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding={padding!r} is not one of VALID, SAME")
    if stride < 1:
        raise ValueError(f"stride={stride!r} must be an integer >= 1")
    impl = impl or ("patches" if jax.default_backend() == "cpu" else "xla")
    if impl not in ("patches", "xla"):
        raise ValueError(f"conv impl={impl!r} is not one of patches, xla")
    w = w.astype(x.dtype)
    kh, kw, cin, cout = w.shape
    if impl == "xla":
        out = jax.lax.conv_general_dilated(
            x, w, window_strides=(stride, stride), padding=padding, dimension_numbers=_DIMENSIONS
        )
    else:
        if padding == "SAME":
            pads = (same_padding(x.shape[1], kh, stride), same_padding(x.shape[2], kw, stride))
            x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
        out = jnp.dot(_patches(x, kh, kw, stride), w.reshape(kh * kw * cin, cout))
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
