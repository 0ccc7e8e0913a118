"""jax.grad through l2_pool: d/dx_i sqrt(sum_j x_j^2) = x_i / ||x||, and 0 (not NaN) on a window
that is all zeros, as ReLU makes many.

Run from the repo root: python examples/grad_through_l2_pool.py
"""

# %%
import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from cnn_jax import l2_pool

# %% One 4x4 map, 2x2 windows; the top-left window is all zeros.
x = jnp.array(
    [[0.0, 0.0, 3.0, 4.0],
     [0.0, 0.0, 0.0, 0.0],
     [1.0, -1.0, 2.0, 0.0],
     [1.0, 1.0, 0.0, 0.0]]
).reshape(1, 4, 4, 1)  # fmt: skip
print("l2_pool(x):\n", l2_pool(x)[0, :, :, 0])

# %% The gradient of the summed pool: x / ||window|| per window, 0 on the all-zero window.
grad = jax.grad(lambda x: l2_pool(x).sum())(x)[0, :, :, 0]
print("grad:\n", grad)
assert bool(jnp.isfinite(grad).all())
norms = jnp.repeat(jnp.repeat(l2_pool(x)[0, :, :, 0], 2, 0), 2, 1)
expected = jnp.where(norms > 0, x[0, :, :, 0] / jnp.where(norms > 0, norms, 1.0), 0.0)
np.testing.assert_allclose(grad, expected, rtol=1e-6)
print("all-zero window gradient:", grad[:2, :2].ravel(), "(finite)")


# %% A naive sqrt(sum x^2) gets NaN there: d sqrt(s)/ds = 1 / (2 sqrt(s)) is infinite at s = 0.
def naive_l2_pool(x: jax.Array) -> jax.Array:
    """sqrt of the 2x2 window sums of squares, with no guard at zero."""
    n, h, w, c = x.shape
    return jnp.sqrt((x * x).reshape(n, h // 2, 2, w // 2, 2, c).sum((2, 4)))


naive = jax.grad(lambda x: naive_l2_pool(x).sum())(x)[0, :, :, 0]
print("naive all-zero window gradient:", naive[:2, :2].ravel())

# %% Away from zero, finite differences agree; the jitted gradient (what training runs) matches,
# for overlapping windows too.
y = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 3))
f = lambda y: l2_pool(y, window=3, stride=2).sum()
check_grads(f, (y,), order=2, modes=["rev"])
np.testing.assert_allclose(jax.jit(jax.grad(f))(y), jax.grad(f)(y), rtol=1e-5)
print("check_grads and jit(grad), window 3 stride 2: ok")
