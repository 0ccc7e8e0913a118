"""Your own Flax model in the harness: a small residual conv net with batch norm, registered as
model "small_resnet" with its own config dataclass.

As a plugin (importing it registers the model), on the command line:
  python -m experiments.train 'plugins=[examples.own_model]' model=small_resnet model.width=32
  python -m experiments.train -m 'plugins=[examples.own_model]' model=small_resnet \
      model.width=8,16 train.seeds=3            # a sweep over its own field -> table.md
As a script (python examples/own_model.py): `fit` on a slice of MNIST, two seeds in one program.

BatchNorm's running statistics (the `batch_stats` collection) are declared `mutable`: they
travel with the parameters (seeds, best-validation copies, checkpoints), are updated by every
training step (train=True) and used as they are in evaluation (train=False).
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

import cnn_jax as cj


@dataclass(frozen=True)
class SmallResNetConfig:
    """width: channels of every conv; blocks: residual blocks (2x2 max pool between them).
    activation and dropout take the command line's model-wide knobs (activation=, dropout=);
    input_shape and num_classes are set from the data."""

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


class SmallResNet(nn.Module):
    """conv-BN-act stem, then residual blocks (conv-BN-act-conv-BN + identity), global average
    pool, dropout, softmax layer. Images arrive as floats in [0, 1], NHWC."""

    cfg: SmallResNetConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c, act = self.cfg, cj.activation(self.cfg.activation)
        norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)  # noqa: E731
        x = act(norm()(nn.Conv(c.width, (3, 3))(x)))
        for i in range(c.blocks):
            y = act(norm()(nn.Conv(c.width, (3, 3))(x)))
            x = act(x + norm()(nn.Conv(c.width, (3, 3))(y)))
            if i < c.blocks - 1:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.Dropout(c.dropout, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
        return nn.Dense(c.num_classes)(x)


cj.register_model("small_resnet", SmallResNetConfig, SmallResNet, mutable=("batch_stats",))

if __name__ == "__main__":
    from pathlib import Path

    mnist = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
    cfg = cj.Config(
        model=SmallResNetConfig(width=8),
        optimizer=cj.OptimizerConfig(name="adam", lr=3e-3),
        data=cj.DataConfig(dir=str(mnist) if mnist.is_dir() else None, train_limit=2000),
        train=cj.TrainConfig(epochs=2, batch_size=50, seeds=2, progress=False),
    )
    print(cj.models.summary.describe(cfg.model), "input", cfg.model.input_shape)
    result = cj.fit(cfg, cj.load_splits(cfg.data))
    for row in result.per_seed:
        print(f"seed {row['seed']}: best val {row['val_acc']:.3f} at epoch "
              f"{row['best_val_epoch']}, test {row['test_acc']:.3f}")
    stats = result.progress.best_params["batch_stats"]
    print("batch_stats kept per seed:", jax.tree_util.tree_leaves(stats)[0].shape[0] == 2)
