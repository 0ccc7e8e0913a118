"""Sliding windows over NHWC maps: the output length along one axis and the strided slices.

Convolution (im2col), every pool, the config's shape check, the model summary and pooling
plugins use these two, so a window's geometry is defined once.
"""

from __future__ import annotations

import jax
from jax import lax

from cnn_jax.geometry import PADDINGS, output_size

__all__ = ["PADDINGS", "output_size", "window_slices"]


def window_slices(x: jax.Array, window: int | tuple[int, int], stride: int = 1) -> list[jax.Array]:
    """For each offset (l, m) of a VALID window, row-major, the (N, OH, OW, C) map
    x[n, j*stride + l, k*stride + m, c]; `window` is a size or (height, width)."""
    kh, kw = (window, window) if isinstance(window, int) else window
    n, h, w, c = x.shape
    oh, ow = output_size(h, kh, stride), output_size(w, kw, stride)
    span_h, span_w = stride * (oh - 1) + 1, stride * (ow - 1) + 1
    return [
        lax.slice(x, (0, l, m, 0), (n, l + span_h, m + span_w, c), (1, stride, stride, 1))
        for l in range(kh) for m in range(kw)  # noqa: E741
    ]  # fmt: skip
