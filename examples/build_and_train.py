"""Build a ConvNet from a ModelConfig, jit its train step, train it on in-memory synthetic images.

Run from the repo root: python examples/build_and_train.py (a few seconds on a CPU).
"""

# %%
import jax
import jax.numpy as jnp
import numpy as np

import cnn_jax as cj


# %% A toy task: 28x28 images holding one bar (0 horizontal, 1 vertical, 2 and 3 diagonals).
def bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n noisy images (N, 28, 28, 1) float32 in [0, 1] and their labels (N,) int32."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    r, c = np.arange(28)[None, :, None], np.arange(28)[None, None, :]
    p = rng.integers(6, 22, n)[:, None, None]
    lines = np.stack(np.broadcast_arrays(r == p, c == p, c - r == p - 14, c + r == p + 14))
    x = np.maximum(rng.uniform(0, 0.4, (n, 28, 28)), lines[y, np.arange(n)])
    return x[..., None].astype(np.float32), y.astype(np.int32)


train_x, train_y = bars(2000, seed=0)
test_x, test_y = bars(500, seed=1)

# %% The model: conv 8@5x5 -> 2x2 max pool -> FC 32 -> softmax over 4 classes.
cfg = cj.ModelConfig(
    conv=(cj.ConvBlockConfig(8, kernel=5, pool=cj.PoolConfig("max", window=2)),),
    dense=(cj.DenseConfig(32),),
    activation="relu",
    init="he",
    num_classes=4,
)
print(cj.format_table(cfg))
model = cj.ConvNet(cfg)
batch, epochs = 50, 3
tx = cj.make_optimizer(cj.OptimizerConfig(name="adam", lr=3e-3, schedule="constant"),
                       len(train_x) // batch)
state = cj.create_state(cj.init_params(model, jax.random.PRNGKey(0)), tx)

# %% Pure steps, jitted once; the Python loop feeds minibatches.
train_step = jax.jit(cj.make_train_step(model, tx))
eval_step = jax.jit(cj.make_eval_step(model))


def accuracy(params) -> float:
    """Test-set accuracy of `params`."""
    m = eval_step(params, test_x, test_y, jnp.ones(len(test_y)))
    return float(m["correct"] / m["count"])


print(f"epoch 0: test accuracy {accuracy(state.params):.3f}")
key = jax.random.PRNGKey(1)
for epoch in range(1, epochs + 1):
    order = np.random.default_rng(epoch).permutation(len(train_x))
    for i in range(len(train_x) // batch):
        idx = order[i * batch : (i + 1) * batch]
        state, metrics = train_step(
            state, train_x[idx], train_y[idx], jax.random.fold_in(key, state.step)
        )
    print(
        f"epoch {epoch}: train loss {float(metrics['loss']):.3f}, "
        f"test accuracy {accuracy(state.params):.3f}"
    )
print(f"final test accuracy: {accuracy(state.params):.3f}")
