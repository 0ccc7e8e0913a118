import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.config import ConvBlockConfig, DenseConfig, ModelConfig, PoolConfig
from cnn_jax.models import ConvNet, count_params, flops_per_image, init_params, layer_table

CONV1 = ModelConfig(conv=(ConvBlockConfig(20),), dense=(DenseConfig(100),))


def params_of(cfg, seed=0):
    return init_params(ConvNet(cfg), jax.random.PRNGKey(seed))


def test_fc_layer_784_to_30_has_23550_params():
    p = params_of(ModelConfig(conv=(), dense=(DenseConfig(30),)))
    assert p["dense0"]["kernel"].size + p["dense0"]["bias"].size == 23_550


def test_conv_layer_of_20_5x5_maps_has_520_params():
    p = params_of(CONV1)
    assert p["conv0"]["kernel"].shape == (5, 5, 1, 20)
    assert p["conv0"]["kernel"].size + p["conv0"]["bias"].size == 520


def test_shapes_28_24_12_and_table_matches_real_params():
    model = ConvNet(CONV1)
    p = params_of(CONV1)
    x = jnp.zeros((3, 28, 28, 1))
    _, state = model.apply({"params": p}, x, mutable=["intermediates"])
    inter = state["intermediates"]["conv0"]
    assert inter["conv"][0].shape == (3, 24, 24, 20)
    assert inter["out"][0].shape == (3, 12, 12, 20)
    rows = layer_table(CONV1)
    assert [r.output_shape for r in rows] == [(12, 12, 20), (100,), (10,)]
    assert sum(r.params for r in rows) == count_params(p) == 520 + 2880 * 100 + 100 + 1010
    assert rows[0].flops == 2 * 25 * 20 * 24 * 24 + 4 * 12 * 12 * 20 + 2 * 12 * 12 * 20
    assert flops_per_image(CONV1) == sum(r.flops for r in rows)


def test_nielsen_init_statistics():
    cfg = ModelConfig(conv=(ConvBlockConfig(40),), dense=(DenseConfig(1000),), init="nielsen")
    p = params_of(cfg)
    assert np.std(p["dense0"]["kernel"]) == pytest.approx(np.sqrt(1 / 1000), rel=0.05)
    assert np.std(p["conv0"]["kernel"]) == pytest.approx(np.sqrt(4 / (40 * 25)), rel=0.15)
    assert np.std(p["dense0"]["bias"]) == pytest.approx(1.0, rel=0.15)
    assert not np.any(p["output"]["kernel"]) and not np.any(p["output"]["bias"])


def test_he_init_zero_biases_and_fan_in_variance():
    p = params_of(ModelConfig(conv=(), dense=(DenseConfig(500),), init="he"))
    assert np.std(p["dense0"]["kernel"]) == pytest.approx(np.sqrt(2 / 784), rel=0.05)
    assert not np.any(p["dense0"]["bias"])


def test_pool_then_activation_differs_from_activation_then_pool_for_l2():
    block = lambda order: ConvBlockConfig(4, pool=PoolConfig("l2"), order=order)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 28, 28, 1))
    a = ModelConfig(conv=(block("pool_act"),), dense=(), activation="relu", init="lecun")
    b = ModelConfig(conv=(block("act_pool"),), dense=(), activation="relu", init="lecun")
    p = params_of(a)
    p["conv0"]["bias"] = jnp.full((4,), -0.1)
    run = lambda cfg: ConvNet(cfg).apply({"params": p}, x, mutable=["intermediates"])[1]
    out_a = run(a)["intermediates"]["conv0"]["out"][0]
    out_b = run(b)["intermediates"]["conv0"]["out"][0]
    assert out_a.shape == out_b.shape == (2, 12, 12, 4)
    assert not np.allclose(out_a, out_b)


def test_max_pool_order_is_equivalent_for_monotone_activation():
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 28, 28, 1))
    make = lambda order: ModelConfig(
        conv=(ConvBlockConfig(4, order=order),), dense=(DenseConfig(8),)
    )
    p = params_of(make("pool_act"))
    outs = [ConvNet(make(o)).apply({"params": p}, x) for o in ("pool_act", "act_pool")]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_uint8_input_is_scaled_to_unit_interval():
    cfg = ModelConfig(conv=(), dense=(DenseConfig(5),), init="lecun")
    p = params_of(cfg)
    x8 = jnp.full((1, 28, 28, 1), 255, jnp.uint8)
    np.testing.assert_allclose(
        ConvNet(cfg).apply({"params": p}, x8),
        ConvNet(cfg).apply({"params": p}, jnp.ones((1, 28, 28, 1))),
        rtol=1e-6,
    )


def test_dropout_is_active_only_in_training():
    cfg = ModelConfig(conv=(), dense=(DenseConfig(50, dropout=0.5),), init="lecun")
    model, p = ConvNet(cfg), params_of(cfg)
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1))
    e1, e2 = (model.apply({"params": p}, x) for _ in range(2))
    np.testing.assert_array_equal(e1, e2)
    t1 = model.apply({"params": p}, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    t2 = model.apply({"params": p}, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    assert not np.allclose(t1, t2)


def test_strided_conv_without_pooling():
    cfg = ModelConfig(conv=(ConvBlockConfig(8, stride=2, pool=PoolConfig("none")),), dense=())
    assert layer_table(cfg)[0].output_shape == (12, 12, 8)
    assert ConvNet(cfg).apply({"params": params_of(cfg)}, jnp.zeros((1, 28, 28, 1))).shape == (
        1,
        10,
    )
