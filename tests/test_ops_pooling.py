import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from cnn_jax.ops import POOLS, PoolKind, avg_pool, l2_pool, lp_pool, max_pool, pool

X4 = jnp.array(
    [[1.0, 2.0, 0.0, -1.0],
     [3.0, 4.0, 5.0, 2.0],
     [0.0, -2.0, 1.0, 1.0],
     [1.0, 2.0, 1.0, 1.0]]
)[None, :, :, None]


def grid(out):
    return np.asarray(out[0, :, :, 0])


def test_window_equals_stride_hand_worked():
    np.testing.assert_allclose(grid(max_pool(X4)), [[4, 5], [2, 1]])
    np.testing.assert_allclose(grid(avg_pool(X4)), [[2.5, 1.5], [0.25, 1.0]])
    np.testing.assert_allclose(grid(l2_pool(X4)), np.sqrt([[30, 30], [9, 4]]), rtol=1e-6)
    np.testing.assert_allclose(grid(lp_pool(X4, p=1.0)), [[10, 8], [5, 4]], rtol=1e-6)
    np.testing.assert_allclose(grid(pool(X4, "none")), grid(X4))


def test_overlapping_window_3_stride_1_hand_worked():
    np.testing.assert_allclose(grid(max_pool(X4, 3, 1)), [[5, 5], [5, 5]])
    np.testing.assert_allclose(grid(avg_pool(X4, 3, 1)), [[14 / 9, 12 / 9], [15 / 9, 15 / 9]],
                               rtol=1e-6)
    np.testing.assert_allclose(grid(l2_pool(X4, 3, 1)), np.sqrt([[60, 56], [61, 57]]), rtol=1e-6)


def test_window_2_stride_1_and_gapped_window_1_stride_2():
    np.testing.assert_allclose(grid(max_pool(X4, 2, 1)), [[4, 5, 5], [4, 5, 5], [2, 2, 1]])
    np.testing.assert_allclose(grid(avg_pool(X4, 1, 2)), [[1, 0], [0, 1]])


def test_odd_size_drops_the_border_like_ignore_border():
    x = jnp.arange(25.0).reshape(1, 5, 5, 1)
    np.testing.assert_allclose(grid(max_pool(x)), [[6, 8], [16, 18]])
    assert max_pool(x, 3, 2).shape == (1, 2, 2, 1)


def test_lp_tends_to_max_abs_for_large_p():
    np.testing.assert_allclose(grid(lp_pool(X4, p=64.0)), [[4, 5], [2, 1]], rtol=0.05)


def test_shapes_24_to_12_per_channel():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 24, 24, 20))
    for kind in ("max", "avg", "l2", "lp"):
        assert pool(x, kind).shape == (3, 12, 12, 20)
    assert pool(x, "max", window=3, stride=2).shape == (3, 11, 11, 20)


@pytest.mark.parametrize("kind", ["max", "avg", "l2", "lp"])
@pytest.mark.parametrize("window,stride", [(2, 2), (3, 2), (2, 1)])
def test_check_grads(kind, window, stride):
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 6, 6, 2), minval=0.5, maxval=2.0)
    x = x * jnp.where(jax.random.bernoulli(jax.random.PRNGKey(2), 0.5, x.shape), 1.0, -1.0)
    f = lambda x: pool(x, kind, window=window, stride=stride, p=3.0)
    check_grads(f, (x,), order=2, modes=["rev"], atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("kind", ["l2", "lp"])
@pytest.mark.parametrize("window,stride", [(2, 2), (3, 2)])
def test_all_zero_windows_have_zero_value_and_finite_gradient(kind, window, stride):
    x = jnp.zeros((1, 6, 6, 1)).at[0, 0, 0, 0].set(1.0)  # relu leaves many zero windows
    f = lambda x: pool(x, kind, window=window, stride=stride, p=3.0).sum()
    g = jax.grad(f)(x)
    assert np.isfinite(np.asarray(g)).all()
    assert float(pool(jnp.zeros((1, 4, 4, 1)), kind, p=3.0).sum()) == 0.0
    assert float(g[0, 0, 0, 0]) == pytest.approx(1.0)


def test_unknown_kind_and_oversized_window():
    with pytest.raises(ValueError, match="kind='foo' is not one of"):
        pool(X4, "foo")
    with pytest.raises(ValueError, match="window=5"):
        max_pool(X4, 5)
    with pytest.raises(ValueError, match="p=0.5"):
        lp_pool(X4, p=0.5)


def test_registry_has_builtins():
    assert {"max", "avg", "l2", "lp", "none"} <= set(POOLS)


@pytest.mark.parametrize("kind", ["max", "avg", "l2", "lp"])
def test_jit_grad_with_overlapping_windows(kind):
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 6, 6, 2))
    f = lambda x: pool(x, kind, window=3, stride=2, p=3.0).sum()
    np.testing.assert_allclose(jax.jit(jax.grad(f))(x), jax.grad(f)(x), rtol=1e-5)


class _SlidingByOne(PoolKind):
    """Overlapping windows by default: a geometry of its own, on its registry entry."""

    def stride(self, window, stride):
        return 1 if stride is None else stride


@pytest.mark.parametrize("entry, pooled_hw", [
    (PoolKind(lambda x, *, window, stride, p, key, train: x, pools=False), (24, 24)),
    (_SlidingByOne(lambda x, *, window, stride, p, key, train: max_pool(x, window, stride)),
     (23, 23)),
])
def test_a_kinds_geometry_comes_from_its_registry_entry_everywhere(monkeypatch, entry,
                                                                   pooled_hw):
    import jax

    from cnn_jax.config import ConvBlockConfig, DenseConfig, ModelConfig, PoolConfig, layer_shapes
    from cnn_jax.models import ConvNet, init_params, layer_table
    from cnn_jax.models.summary import describe

    monkeypatch.setitem(POOLS, "toy", entry)
    cfg = ModelConfig(conv=(ConvBlockConfig(3, pool=PoolConfig("toy")),), dense=(DenseConfig(4),))
    assert layer_shapes(cfg) == [((24, 24), pooled_hw)]
    row, (h, w) = layer_table(cfg)[0], pooled_hw
    assert row.output_shape == (h, w, 3)
    conv, pooling = 2 * 5 * 5 * 1 * 3 * 24 * 24, (4 * h * w * 3 if entry.pools else 0)
    assert row.flops == conv + pooling + 2 * h * w * 3
    assert ("toy-pool" in describe(cfg)) == entry.pools
    assert cfg.conv[0].pool.effective_stride == entry.stride(2, None)
    net = ConvNet(cfg)
    params = init_params(net, jax.random.PRNGKey(0))
    assert params["dense0"]["kernel"].shape[0] == pooled_hw[0] * pooled_hw[1] * 3
    _, state = net.apply({"params": params}, jnp.zeros((1, 28, 28, 1)),
                         mutable=["intermediates"])
    assert state["intermediates"]["conv0"]["out"][0].shape == (1, *pooled_hw, 3)


def test_register_pool_wraps_a_function_in_an_entry():
    from cnn_jax.ops.pooling import register_pool

    register_pool("flat", lambda x, *, window, stride, p, key, train: x, pools=False)
    entry = POOLS.pop("flat")
    assert isinstance(entry, PoolKind) and not entry.pools and entry.area(3) == 1
    assert POOLS["max"].area(3) == 9 and POOLS["max"].output_hw(7, 6, 3, None) == (2, 2)
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(pool(x, "max", window=2), POOLS["max"](
        x, window=2, stride=None, p=2.0, key=None, train=False))
