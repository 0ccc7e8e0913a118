import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.ops import ACTIVATIONS, activation, dropout


def test_activations():
    x = jnp.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(activation("relu")(x), [0, 0, 3])
    np.testing.assert_allclose(activation("sigmoid")(jnp.zeros(1)), [0.5])
    np.testing.assert_allclose(activation("tanh")(x), np.tanh([-2, 0, 3]), rtol=1e-6)
    assert {"sigmoid", "tanh", "relu", "gelu", "silu"} <= set(ACTIVATIONS)
    with pytest.raises(ValueError, match="activation='swishy' is not one of"):
        activation("swishy")


def test_inverted_dropout_scales_in_training_and_is_identity_at_eval():
    x = jnp.ones((20000,))
    y = dropout(x, 0.25, jax.random.PRNGKey(0), train=True)
    kept = np.asarray(y) != 0
    assert kept.mean() == pytest.approx(0.75, abs=0.02)
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(dropout(x, 0.25, None, train=False), x)


def test_nielsen_dropout_masks_unscaled_and_scales_at_eval():
    x = jnp.ones((20000,))
    y = dropout(x, 0.5, jax.random.PRNGKey(0), train=True, form="nielsen")
    assert set(np.unique(np.asarray(y))) == {0.0, 1.0}
    np.testing.assert_allclose(dropout(x, 0.5, None, train=False, form="nielsen"), 0.5 * x)


def test_dropout_rejects_bad_values():
    with pytest.raises(ValueError, match="rate=1.0"):
        dropout(jnp.ones(3), 1.0, jax.random.PRNGKey(0), train=True)
    with pytest.raises(ValueError, match="form='scaled'"):
        dropout(jnp.ones(3), 0.5, jax.random.PRNGKey(0), train=True, form="scaled")
