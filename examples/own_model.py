"""Your own Flax model in the harness: a small residual conv net with batch norm, registered as
model "small_resnet" with its own config dataclass (docs/api.md, "Your own model").

Command line (importing the module registers the model):
  python -m experiments.train -m 'plugins=[examples.own_model]' model=small_resnet \
      model.width=8,16 train.seeds=3          # a sweep over its own field -> table.md
Script: python examples/own_model.py (`fit` on 1,000 MNIST images, two seeds in one program).
BatchNorm's `batch_stats` are declared mutable: they travel with the parameters (seeds, best
copies, checkpoints), training steps (train=True) update them, evaluation (train=False) uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

import cnn_jax as cj


# %% The config: its fields are the keys under `model.`; activation and dropout take the
# command line's knobs (activation=, dropout=); input_shape and num_classes come from the data.
@dataclass(frozen=True)
class SmallResNetConfig:
    width: int = 16
    blocks: int = 2
    activation: str = "relu"
    dropout: float = 0.0
    input_shape: tuple[int, int, int] = (28, 28, 1)
    num_classes: int = 10

    def __post_init__(self) -> None:
        for name in ("width", "blocks"):
            if getattr(self, name) < 1:
                raise cj.ConfigError(f"model.{name}={getattr(self, name)!r} must be >= 1")
        if self.activation not in cj.ACTIVATIONS:
            raise cj.ConfigError(f"model.activation={self.activation!r} is not one of "
                                 f"{', '.join(cj.ACTIVATIONS)}")


# %% The module: images arrive NHWC as floats in [0, 1]; it returns logits.
class SmallResNet(nn.Module):
    cfg: SmallResNetConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c, act = self.cfg, cj.activation(self.cfg.activation)
        norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)  # noqa: E731
        x = act(norm()(nn.Conv(c.width, (3, 3))(x)))
        for i in range(c.blocks):  # conv-BN-act-conv-BN plus the identity, then a 2x2 pool
            y = act(norm()(nn.Conv(c.width, (3, 3))(x)))
            x = act(x + norm()(nn.Conv(c.width, (3, 3))(y)))
            if i < c.blocks - 1:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.Dropout(c.dropout, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
        return nn.Dense(c.num_classes)(x)


cj.register_model("small_resnet", SmallResNetConfig, SmallResNet, mutable=("batch_stats",))

# %% Train it like any model: two seeds in one program, best-validation params per seed.
if __name__ == "__main__":
    cfg = cj.Config(model=SmallResNetConfig(width=4, blocks=1),
                    optimizer=cj.OptimizerConfig(name="adam", lr=0.01, schedule="constant"),
                    data=cj.DataConfig(protocol="full", train_limit=1000),
                    train=cj.TrainConfig(epochs=2, batch_size=50, seeds=2, progress=False))
    result = cj.fit(cfg, cj.load_splits(cfg.data))
    for row in result.per_seed:
        print(f"seed {row['seed']}: test {row['test_acc']:.3f} (best val epoch "
              f"{row['best_val_epoch']})")
    stats = jax.tree_util.tree_leaves(result.progress.best_params["batch_stats"])
    print(f"batch_stats per seed: {stats[0].shape[0]} sets")
