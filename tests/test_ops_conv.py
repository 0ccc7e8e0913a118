import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from cnn_jax.ops import conv2d, window_slices


def conv2d_reference(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """Slow explicit-sum VALID cross-correlation: the reference for the fast paths."""
    kw = w.shape[1]
    slices = window_slices(x, w.shape[:2], stride)
    return sum(jnp.einsum("nhwi,io->nhwo", s, w[i // kw, i % kw]) for i, s in enumerate(slices))



def test_seed_vertical_edge_example():
    image = jnp.zeros((1, 6, 6, 1)).at[:, :, :3, :].set(10.0)
    kernel = jnp.array([[1.0, 0.0, -1.0]] * 3)[:, :, None, None]
    out = conv2d(image, kernel)
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, 30, 30, 0]] * 4)


def test_is_cross_correlation_not_convolution():
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    w = jnp.zeros((2, 2, 1, 1)).at[0, 0].set(1.0)  # picks the top-left of each window
    np.testing.assert_array_equal(conv2d(x, w)[0, :, :, 0], [[0, 1], [3, 4]])


def test_shape_28_to_24_and_bias_is_shared():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 28, 28, 1))
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 1, 20))
    b = jnp.arange(20.0)
    out = conv2d(x, w, b)
    assert out.shape == (2, 24, 24, 20)
    np.testing.assert_allclose(out - conv2d(x, w), jnp.broadcast_to(b, out.shape), atol=1e-4)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_matches_explicit_sum(stride):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 11, 11, 3))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 3, 4))
    np.testing.assert_allclose(
        conv2d(x, w, stride=stride), conv2d_reference(x, w, stride), rtol=1e-4, atol=1e-4
    )


def test_same_padding_keeps_size_and_stride_halves():
    x = jnp.ones((1, 28, 28, 1))
    w = jnp.ones((5, 5, 1, 2))
    assert conv2d(x, w, padding="SAME").shape == (1, 28, 28, 2)
    assert conv2d(x, w, stride=2, padding="SAME").shape == (1, 14, 14, 2)
    assert float(conv2d(x, w, padding="SAME")[0, 14, 14, 0]) == 25.0
    assert float(conv2d(x, w, padding="SAME")[0, 0, 0, 0]) == 9.0


def test_bad_arguments():
    x, w = jnp.ones((1, 6, 6, 1)), jnp.ones((3, 3, 1, 1))
    with pytest.raises(ValueError, match="stride=0"):
        conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="padding='full'"):
        conv2d(x, w, padding="full")


def test_grad_and_vmap():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 2))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 2, 3))
    check_grads(lambda w: conv2d(x, w).sum(), (w,), order=1, modes=["rev"])
    ws = jnp.stack([w, 2 * w])
    out = jax.vmap(lambda w: conv2d(x, w))(ws)
    np.testing.assert_allclose(out[1], 2 * conv2d(x, w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "stride,padding", [(1, "VALID"), (2, "VALID"), (1, "SAME"), (2, "SAME"), (3, "SAME")]
)
def test_patches_and_xla_impls_agree(stride, padding):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 11, 3))
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 3, 6))
    a = conv2d(x, w, stride=stride, padding=padding, impl="patches")
    b = conv2d(x, w, stride=stride, padding=padding, impl="xla")
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    ga = jax.grad(lambda w: conv2d(x, w, stride=stride, padding=padding, impl="patches").sum())(w)
    gb = jax.grad(lambda w: conv2d(x, w, stride=stride, padding=padding, impl="xla").sum())(w)
    np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("impl", ["auto", "patches"])
@pytest.mark.parametrize("stride,padding", [(1, "VALID"), (2, "VALID"), (2, "SAME")])
def test_impl_gradients_match_xla_for_input_and_kernel(stride, padding, impl):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 3))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 3, 4))
    loss = lambda impl: (
        lambda x, w: (conv2d(x, w, stride=stride, padding=padding, impl=impl) ** 2).sum()
    )
    auto = jax.jit(jax.grad(loss(impl), argnums=(0, 1)))(x, w)
    ref = jax.grad(loss("xla"), argnums=(0, 1))(x, w)
    for a, r in zip(auto, ref, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-3, atol=1e-3)
