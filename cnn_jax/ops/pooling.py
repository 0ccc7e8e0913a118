"""Pooling over square windows of NHWC feature maps: max, avg, l2, lp, none.

Windows that do not fit at the border are dropped (VALID, Theano's ignore_border=True). When the
stride equals the window the maps are cropped, reshaped and reduced (max: the elementwise maximum
of the window's strided slices, with a custom JVP that splits the gradient among tied maxima like
`jnp.max` but costs a third as much on CPU); otherwise (overlapping or gapped windows)
`lax.reduce_window` does the work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.geometry import window_stride
from cnn_jax.ops.windows import output_size, window_slices


class PoolFn(Protocol):
    def __call__(
        self,
        x: jax.Array,
        *,
        window: int,
        stride: int,
        p: float,
        key: jax.Array | None,
        train: bool,
    ) -> jax.Array: ...


def _tiles(x: jax.Array, window: int) -> jax.Array:
    """(N, OH, window, OW, window, C) view of the non-overlapping windows (border cropped)."""
    n, h, w, c = x.shape
    oh, ow = output_size(h, window, window), output_size(w, window, window)
    return x[:, : oh * window, : ow * window, :].reshape(n, oh, window, ow, window, c)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _tiled_max(x: jax.Array, window: int) -> jax.Array:
    return functools.reduce(jnp.maximum, window_slices(x, window, window))


@_tiled_max.defjvp
def _tiled_max_jvp(window: int, primals, tangents):
    """jnp.max's rule: the tangent is the mean of the tangents at the tied maxima."""
    (x,), (t,) = primals, tangents
    out = _tiled_max(x, window)
    count = sum((s == out).astype(x.dtype) for s in window_slices(x, window, window))
    hit = _tiles(x, window) == out[:, :, None, :, None, :]
    return out, jnp.where(hit, _tiles(t, window), 0.0).sum((2, 4)) / count


def _window_reduce(
    x: jax.Array, window: int, stride: int, reduce: Callable, init: float, op: Callable
) -> jax.Array:
    """Reduce each window with `reduce` (reshape path) or `op` (reduce_window path)."""
    output_size(x.shape[1], window, stride), output_size(x.shape[2], window, stride)  # size checks
    if stride == window:
        return reduce(_tiles(x, window), axis=(2, 4))
    return jax.lax.reduce_window(
        x,
        np.asarray(init, x.dtype),  # concrete, so autodiff (jit, grad) keeps its transpose rule
        op,
        window_dimensions=(1, window, window, 1),
        window_strides=(1, stride, stride, 1),
        padding="VALID",
    )


def _sum_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    return _window_reduce(x, window, stride, jnp.sum, 0.0, jax.lax.add)


def _safe_root(s: jax.Array, p: float) -> jax.Array:
    """s ** (1/p) with value and gradient 0 where s == 0 (an all-zero window)."""
    positive = s > 0
    safe = jnp.where(positive, s, jnp.ones_like(s))
    root = jnp.sqrt(safe) if p == 2.0 else safe ** (1.0 / p)
    return jnp.where(positive, root, jnp.zeros_like(s))


def max_pool(x: jax.Array, window: int = 2, stride: int | None = None) -> jax.Array:
    """Maximum over each window."""
    stride = window_stride(window, stride)
    if stride == window:
        return _tiled_max(x, window)
    return _window_reduce(x, window, stride, jnp.max, -np.inf, jax.lax.max)


def avg_pool(x: jax.Array, window: int = 2, stride: int | None = None) -> jax.Array:
    """Mean over each window."""
    stride = window_stride(window, stride)
    return _sum_pool(x, window, stride) / (window * window)


def l2_pool(x: jax.Array, window: int = 2, stride: int | None = None) -> jax.Array:
    """sqrt(sum of squares) over each window; finite gradient on all-zero windows."""
    stride = window_stride(window, stride)
    return _safe_root(_sum_pool(x * x, window, stride), 2.0)


def lp_pool(x: jax.Array, window: int = 2, stride: int | None = None, p: float = 2.0) -> jax.Array:
    """(sum |x|^p)^(1/p) over each window, p >= 1; p=2 is l2_pool, p -> inf tends to max |x|.

    For p != 2 each window is divided by its largest |x| (a constant to autodiff) before the
    power and multiplied back after the root, so a large p neither overflows nor underflows.
    """
    if p < 1.0:
        raise ValueError(f"lp pool p={p!r} must be >= 1")
    stride = window_stride(window, stride)
    if p == 2.0:
        return _safe_root(_sum_pool(x * x, window, stride), 2.0)
    a = jnp.abs(jnp.stack(window_slices(x, window, stride)))
    top = jax.lax.stop_gradient(a.max(axis=0))
    top = jnp.where(top > 0, top, jnp.ones_like(top))
    return _safe_root(jnp.sum((a / top) ** p, axis=0), float(p)) * top


@dataclass(frozen=True)
class PoolKind:
    """A registered pooling kind: its function and the geometry of its windows, which the
    config's shape check, the model (pool call, init fan-in), its summary and the figures read.

    pools: whether it pools at all (False for "none": the maps go on as they are, no window).
    """

    fn: PoolFn
    pools: bool = True

    def __call__(self, x: jax.Array, *, window: int, stride: int | None, p: float,
                 key: jax.Array | None, train: bool) -> jax.Array:
        """Pool NHWC `x` (stride None: the window)."""
        return self.fn(x, window=window, stride=self.stride(window, stride), p=p, key=key,
                       train=train)

    def stride(self, window: int, stride: int | None) -> int:
        """The stride its windows move by (`stride`; None: the window)."""
        return window_stride(window, stride)

    def area(self, window: int) -> int:
        """Input pixels per output pixel: window**2, or 1 where it does not pool."""
        return window * window if self.pools else 1

    def output_hw(self, h: int, w: int, window: int, stride: int | None) -> tuple[int, int]:
        """(h, w) of its output for (h, w) maps: unchanged where it does not pool; a window
        larger than the maps is a ValueError."""
        if not self.pools:
            return h, w
        step = self.stride(window, stride)
        return output_size(h, window, step), output_size(w, window, step)


POOLS: dict[str, PoolKind] = {
    "max": PoolKind(lambda x, *, window, stride, p, key, train: max_pool(x, window, stride)),
    "avg": PoolKind(lambda x, *, window, stride, p, key, train: avg_pool(x, window, stride)),
    "l2": PoolKind(lambda x, *, window, stride, p, key, train: l2_pool(x, window, stride)),
    "lp": PoolKind(lambda x, *, window, stride, p, key, train: lp_pool(x, window, stride, p)),
    "none": PoolKind(lambda x, *, window, stride, p, key, train: x, pools=False),
}


def register_pool(name: str, fn: PoolFn | PoolKind, *, pools: bool = True) -> None:
    """Make `fn(x, *, window, stride, p, key, train)` available as pooling kind `name`.

    `key` is a PRNG key in training (None at evaluation), for stochastic pools. `pools=False`:
    it keeps the maps' size (no window). A `PoolKind` (or a subclass with its own geometry)
    is registered as it is.
    """
    POOLS[name] = fn if isinstance(fn, PoolKind) else PoolKind(fn, pools)


def pool_kind(kind: str) -> PoolKind:
    """The registered entry of `kind`; a one-line ValueError naming the registered ones."""
    try:
        return POOLS[kind]
    except KeyError:
        raise ValueError(f"pooling kind={kind!r} is not one of {', '.join(POOLS)}") from None


def pool(
    x: jax.Array,
    kind: str,
    *,
    window: int = 2,
    stride: int | None = None,
    p: float = 2.0,
    key: jax.Array | None = None,
    train: bool = False,
) -> jax.Array:
    """Pool NHWC `x` with the registered `kind`; stride defaults to the window."""
    return pool_kind(kind)(x, window=window, stride=stride, p=p, key=key, train=train)
