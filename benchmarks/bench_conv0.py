"""The 1-channel first layer's forward and kernel gradient, five formulations side by side.

python benchmarks/bench_conv0.py [--batch-size 10 128 256] [--rounds 3]

Times jit(value_and_grad over the kernel) of sum(conv(x, w) * g) on 28x28x1 images with a 5x5
kernel (what a training step asks of conv0: no input gradient), alternating the variants in
each round, and prints microseconds per call (best of 5 timings per round) and each variant's
largest gradient difference from "patches", the project's implementation:
- patches: im2col (N*576 x 25) @ (25 x O), autodiff: kernel gradient P^T dY (cnn_jax.ops.conv);
- xla: lax.conv_general_dilated, autodiff;
- rows: 5 row-shifted copies of the input (N*24 x 5*28) @ a banded Toeplitz matrix
  (5*28 x 24*O) built from the kernel; 5.6x the arithmetic in two large matmuls;
- shifted_mac: the sum of 25 shifted input slices times the kernel's rows, one fused pass,
  no patch matrix; its kernel gradient is 25 reductions over dY;
- xla_fwd_patch_grad: XLA's forward convolution, the patch-matrix kernel gradient (custom VJP).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from timing import seconds_per_call

from cnn_jax.ops.conv import conv2d, patch_matrix
from cnn_jax.ops.windows import window_slices

K = 5
FEATURES = {10: 20, 128: 20, 256: 24}  # Nielsen's conv20 at 10 and 128, experiment=fast's 24


def _xla(x: jax.Array, w: jax.Array) -> jax.Array:
    return conv2d(x, w, impl="xla")


def _rows(x: jax.Array, w: jax.Array) -> jax.Array:
    n, h, width, _ = x.shape
    o, oh, ow = w.shape[-1], h - K + 1, width - K + 1
    band = np.zeros((width, ow, K), np.float32)  # band[k + m, k, m] = 1
    for k in range(ow):
        band[np.arange(k, k + K), k, np.arange(K)] = 1
    toeplitz = jnp.einsum("pkm,lmo->lpko", band, w[:, :, 0, :]).reshape(K * width, ow * o)
    a = jnp.stack([x[:, r : r + oh, :, 0] for r in range(K)], axis=2).reshape(n * oh, K * width)
    return (a @ toeplitz).reshape(n, oh, ow, o)


def _shifted_mac(x: jax.Array, w: jax.Array) -> jax.Array:
    return sum(s * w[i // K, i % K, 0] for i, s in enumerate(window_slices(x, K)))


@jax.custom_vjp
def _xla_fwd_patch_grad(x: jax.Array, w: jax.Array) -> jax.Array:
    return _xla(x, w)


def _fwd(x, w):
    return _xla(x, w), x


def _bwd(x, g):
    p, _ = patch_matrix(x, K, K)
    return jnp.zeros_like(x), (p.T @ g.reshape(p.shape[0], -1)).reshape(K, K, 1, g.shape[-1])


_xla_fwd_patch_grad.defvjp(_fwd, _bwd)

VARIANTS: dict[str, Callable] = {
    "patches": lambda x, w: conv2d(x, w, impl="patches"),
    "xla": _xla,
    "rows": _rows,
    "shifted_mac": _shifted_mac,
    "xla_fwd_patch_grad": _xla_fwd_patch_grad,
}


def kernel_grad_fn(conv: Callable) -> Callable:
    """jit(w, x, g -> (sum(conv(x, w) * g), its gradient in w)); x and g are arguments, not
    constants, so XLA cannot fold the patch matrix at compile time."""
    return jax.jit(jax.value_and_grad(lambda w, x, g: jnp.sum(conv(x, w) * g)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, nargs="+", default=[10, 128, 256])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    for n in args.batch_size:
        o = FEATURES.get(n, 20)
        kx, kw, kg = jax.random.split(jax.random.key(0), 3)
        x = jax.random.uniform(kx, (n, 28, 28, 1))
        w = 0.1 * jax.random.normal(kw, (K, K, 1, o))
        g = jax.random.normal(kg, (n, 28 - K + 1, 28 - K + 1, o))
        fns = {name: kernel_grad_fn(conv) for name, conv in VARIANTS.items()}
        grads = {name: jax.block_until_ready(fn(w, x, g))[1] for name, fn in fns.items()}
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(args.rounds):
            for name, fn in fns.items():
                times[name].append(seconds_per_call(fn, w, x, g, repeats=5))
        print(f"minibatch {n}, {o} maps: us per forward + kernel gradient (rounds), "
              f"ratio of the median to patches, max |grad - patches grad|")
        base = float(np.median(times["patches"]))
        for name, ts in times.items():
            diff = float(jnp.abs(grads[name] - grads["patches"]).max())
            rounds = " / ".join(f"{t * 1e6:,.0f}" for t in ts)
            print(f"  {name:20s} {rounds:>28s}  x{base / np.median(ts):.2f}  {diff:.1e}",
                  flush=True)


if __name__ == "__main__":
    main()
