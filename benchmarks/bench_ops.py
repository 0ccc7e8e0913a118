"""Micro-benchmarks of the conv and pooling ops at the shapes of Nielsen's chapter-6 nets.

Times jitted forward, forward + kernel gradient, and forward + input and kernel gradients of
each conv2d implementation (optionally vmapped over a seed axis of x and w, as `fit` does), and
forward + backward of max pooling versus the plain reshape-and-max formulation and a max pool
whose gradient goes to the first maximum of each window (no split among ties). Prints one JSON
line per measurement, best (minimum) of several repeats, microseconds per call.
  python benchmarks/bench_ops.py --batch-size 10 128 --seeds 0 5
  python benchmarks/bench_ops.py --ops pool --batch-size 10 128 256
"""

from __future__ import annotations

import argparse
import functools
import json
import os

import jax
import jax.numpy as jnp
from timing import seconds_per_call

from cnn_jax.ops.conv import IMPLS, conv2d
from cnn_jax.ops.pooling import _tiles, max_pool
from cnn_jax.ops.windows import window_slices

CONV_SHAPES = {"conv1": (28, 1, 20), "conv2": (12, 20, 40)}  # input size, in, out channels


def reshape_max_pool(x: jax.Array, window: int = 2) -> jax.Array:
    """The plain formulation (jnp.max over a reshaped tiling), for comparison."""
    n, h, w, c = x.shape
    return x.reshape(n, h // window, window, w // window, window, c).max((2, 4))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def first_max_pool(x: jax.Array, window: int = 2) -> jax.Array:
    """Max pooling whose tangent is the one at the first maximum of each window (row-major),
    PyTorch's rule, instead of jnp.max's mean over tied maxima: the backward is one pass that
    reads an int8 index per window, with no tie count."""
    return functools.reduce(jnp.maximum, window_slices(x, window, window))


@first_max_pool.defjvp
def _first_max_jvp(window: int, primals, tangents):
    (x,), (t,) = primals, tangents
    slices = window_slices(x, window, window)
    out = functools.reduce(jnp.maximum, slices)
    first = jnp.full(out.shape, len(slices) - 1, jnp.int8)
    for i in range(len(slices) - 2, -1, -1):
        first = jnp.where(slices[i] == out, jnp.int8(i), first)
    position = jnp.arange(window * window, dtype=jnp.int8).reshape(1, 1, window, 1, window, 1)
    hit = position == first[:, :, None, :, None, :]
    return out, jnp.where(hit, _tiles(t, window), 0.0).sum((2, 4))


def conv_cases(bs: int, seeds: int, layer: str, impl: str, key: jax.Array) -> dict[str, tuple]:
    """name -> (jitted fn, args) for forward, grad wrt w, grad wrt (x, w)."""
    size, cin, cout = CONV_SHAPES[layer]
    lead = (seeds,) if seeds else ()
    kx, kw, kg = jax.random.split(key, 3)
    x = jax.random.normal(kx, (*lead, bs, size, size, cin))
    w = jax.random.normal(kw, (*lead, 5, 5, cin, cout)) * 0.1
    g = jax.random.normal(kg, (*lead, bs, size - 4, size - 4, cout))
    f = lambda x, w: conv2d(x, w, impl=impl)
    loss = lambda x, w, g: jnp.vdot(f(x, w), g)
    fns = {"fwd": lambda x, w, g: f(x, w), "fwd+dw": jax.grad(loss, 1),
           "fwd+dx+dw": jax.grad(loss, (0, 1))}
    wrap = (lambda h: jax.jit(jax.vmap(h))) if seeds else jax.jit
    return {name: (wrap(h), (x, w, g)) for name, h in fns.items()}


def main(argv: list[str] | None = None) -> None:
    """Run the conv and pooling micro-benchmarks and print JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, nargs="+", default=[10, 128])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="0 = no seed axis")
    p.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    p.add_argument("--layers", nargs="+", default=list(CONV_SHAPES), choices=list(CONV_SHAPES))
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--ops", nargs="+", default=["conv", "pool"], choices=["conv", "pool"])
    a = p.parse_args(argv)
    info = {"backend": jax.default_backend(), "jax": jax.__version__, "cpus": os.cpu_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}
    key = jax.random.PRNGKey(0)
    for bs in a.batch_size:
        for seeds in a.seeds:
            for layer in a.layers if "conv" in a.ops else ():
                for impl in a.impls:
                    for name, (fn, args) in conv_cases(bs, seeds, layer, impl, key).items():
                        us = seconds_per_call(fn, *args, repeats=a.repeats) * 1e6
                        print(json.dumps({**info, "op": "conv2d", "layer": layer, "impl": impl,
                                          "pass": name, "batch_size": bs, "seeds": seeds,
                                          "us": round(us, 1)}), flush=True)
            if "pool" not in a.ops:
                continue
            lead = (seeds,) if seeds else ()
            x = jax.random.normal(key, (*lead, bs, 24, 24, 20))
            pools = (("max_pool", max_pool), ("reshape_max", reshape_max_pool),
                     ("first_max", first_max_pool))
            for name, pool in pools:
                f = lambda x, pool=pool: jnp.sum(jax.nn.sigmoid(pool(x)))
                fn = jax.value_and_grad(f)
                fn = jax.jit(jax.vmap(fn) if seeds else fn)
                us = seconds_per_call(fn, x, repeats=a.repeats) * 1e6
                print(json.dumps({**info, "op": "pool", "impl": name, "pass": "fwd+dx",
                                  "batch_size": bs, "seeds": seeds, "us": round(us, 1)}),
                      flush=True)


if __name__ == "__main__":
    main()
