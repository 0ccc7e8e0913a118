"""On a GPU/TPU: the accelerator paths agree with the reference ones (`make gpu-check` runs these).

Marked `gpu` (deselected by the default addopts) and skipped where JAX sees only a CPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.config import (
    Config,
    ConvBlockConfig,
    DenseConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
)
from cnn_jax.data import Splits
from cnn_jax.models import ConvNet, init_params
from cnn_jax.ops.conv import conv2d
from cnn_jax.train import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(jax.default_backend() == "cpu", reason="JAX sees no GPU/TPU"),
]

MODEL = ModelConfig(conv=(ConvBlockConfig(8), ConvBlockConfig(16)), dense=(DenseConfig(32),),
                    activation="relu", init="lecun")


def synthetic_splits(n_train: int = 512, n_eval: int = 128) -> Splits:
    """Random uint8 images whose label is the brightest image quadrant's index (learnable)."""
    rng = np.random.default_rng(0)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        quads = x[:, :14, :14].sum((1, 2, 3)), x[:, :14, 14:].sum((1, 2, 3))
        return x, np.argmax(np.stack(quads, 1), 1).astype(np.int32)

    return Splits(*part(n_train), *part(n_eval), *part(n_eval))


def small_cfg(**train) -> Config:
    train = {"epochs": 2, "batch_size": 32, "eval_batch_size": 64, "progress": False, **train}
    return Config(model=MODEL, optimizer=OptimizerConfig("momentum", lr=0.05, momentum=0.9,
                                                     schedule="constant"),
                  train=TrainConfig(**train))


def max_leaf_diff(a, b) -> float:
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return max(float(np.abs(np.asarray(x, np.float32) - np.asarray(y, np.float32)).max())
               for x, y in pairs)


@pytest.mark.parametrize(("stride", "padding"), [(1, "VALID"), (2, "SAME")])
def test_conv_impls_agree_forward_and_gradients(stride, padding):
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (16, 28, 28, 3))
    w = jax.random.normal(kw, (5, 5, 3, 8)) * 0.1

    def loss(impl):
        return lambda x, w: jnp.sum(conv2d(x, w, stride=stride, padding=padding, impl=impl) ** 2)

    outs = {impl: conv2d(x, w, stride=stride, padding=padding, impl=impl)
            for impl in ("xla", "patches")}
    np.testing.assert_allclose(outs["xla"], outs["patches"], rtol=2e-3, atol=2e-3)
    grads = {impl: jax.jit(jax.grad(loss(impl), argnums=(0, 1)))(x, w)
             for impl in ("xla", "patches")}
    for a, b in zip(grads["xla"], grads["patches"], strict=True):
        scale = float(jnp.abs(a).max())
        np.testing.assert_allclose(a / scale, b / scale, atol=2e-3)


def test_vmapped_seeds_equal_looped_seeds():
    splits = synthetic_splits()
    vmapped = fit(small_cfg(seeds=3, seed_batching="vmap"), splits)
    looped = fit(small_cfg(seeds=3, seed_batching="loop"), splits)
    assert max_leaf_diff(vmapped.progress.state.params, looped.progress.state.params) < 1e-3
    np.testing.assert_allclose(vmapped.history[-1]["train_loss"],
                               looped.history[-1]["train_loss"], rtol=1e-3)


def test_data_parallel_over_the_visible_devices_matches_one_device():
    n = jax.device_count()
    splits = synthetic_splits()
    one = fit(small_cfg(batch_size=32 * n), splits)
    sharded = fit(small_cfg(batch_size=32 * n, devices=n), splits)
    assert max_leaf_diff(one.progress.state.params, sharded.progress.state.params) < 1e-3
    assert sharded.history[-1]["test_acc"] == pytest.approx(one.history[-1]["test_acc"], abs=0.02)


def test_bf16_forward_is_within_tolerance_of_f32():
    net = ConvNet(MODEL)
    params = init_params(net, jax.random.PRNGKey(0))
    x = synthetic_splits(n_train=256).train_x.astype(np.float32) / 255.0
    f32 = net.apply({"params": params}, x)
    as_bf16 = lambda t: jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), t)
    bf16 = net.apply({"params": as_bf16(params)}, as_bf16(x)).astype(jnp.float32)
    assert bf16.dtype == jnp.float32 and jnp.isfinite(bf16).all()
    scale = float(jnp.abs(f32).max())
    assert float(jnp.abs(bf16 - f32).max()) < 0.05 * scale
    assert float(jnp.mean(bf16.argmax(-1) == f32.argmax(-1))) >= 0.95
