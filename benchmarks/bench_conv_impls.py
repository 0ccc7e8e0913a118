"""Side-by-side images/s of one scanned training epoch for conv2d impls ("patches" vs "xla").

python benchmarks/bench_conv_impls.py   (a short epoch of 1280 images, data on the device)
"""

import time

import jax
import jax.numpy as jnp

import cnn_jax.models.blocks as blocks
from cnn_jax.config import ConvBlockConfig, DenseConfig, ModelConfig, OptimizerConfig
from cnn_jax.models import ConvNet, init_params
from cnn_jax.ops.conv import conv2d
from cnn_jax.train import create_state, make_optimizer, make_train_epoch, make_train_step

FAST = ModelConfig(conv=(ConvBlockConfig(16, order="act_pool"),
                         ConvBlockConfig(32, order="act_pool")),
                   dense=(DenseConfig(128),), activation="relu", init="he")
CONV1 = ModelConfig(conv=(ConvBlockConfig(20),), dense=(DenseConfig(100),))
CONV2 = ModelConfig(conv=(ConvBlockConfig(20), ConvBlockConfig(40)), dense=(DenseConfig(100),))
CASES = {"fast_b64": (FAST, 64), "conv1_b10": (CONV1, 10), "conv2_b10": (CONV2, 10)}
N = 1280


def images_per_sec(cfg: ModelConfig, batch: int, impl: str, repeats: int = 2) -> float:
    """Best of `repeats` timed epochs after a compile-and-warm-up call."""
    blocks.conv2d = lambda x, w, b=None, *, stride=1, padding="VALID": conv2d(
        x, w, b, stride=stride, padding=padding, impl=impl)
    model = ConvNet(cfg)
    tx = make_optimizer(OptimizerConfig("sgd", lr=0.01), 100, 1)
    state = create_state(init_params(model, jax.random.PRNGKey(0)), tx)
    epoch = jax.jit(make_train_epoch(make_train_step(model, tx), N, batch, True))
    x, y = jnp.ones((N, 28, 28, 1), jnp.uint8), jnp.zeros((N,), jnp.int32)
    key = jax.random.PRNGKey(1)
    jax.block_until_ready(epoch(state, key, x, y))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(epoch(state, key, x, y))
        best = min(best, time.perf_counter() - t)
    return N / best


if __name__ == "__main__":
    for name, (cfg, batch) in CASES.items():
        for impl in ("patches", "xla"):
            print(f"{name} {impl} {images_per_sec(cfg, batch, impl):.0f} img/s", flush=True)
