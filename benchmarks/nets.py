"""The nets the benchmarks time, each named, with the command-line overrides that select it.

Every benchmark reads its net from `conf/` through `experiments.compose`, so a benchmark and a
run of `python -m experiments.train OVERRIDES` time the same layers.
"""

from __future__ import annotations

from cnn_jax.config import Config
from experiments.compose import compose_config

NETS: dict[str, tuple[str, ...]] = {
    # Nielsen's conv20-pool-FC100 with sigmoid (row 2's net; vs_torch.py's PyTorch twin)
    "nielsen_conv1": ("model=nielsen_conv1", "activation=sigmoid", "optimizer=sgd"),
    # conv20-pool-conv40-pool-FC100 with sigmoid (row 3)
    "nielsen_conv2": ("model=nielsen_conv2", "activation=sigmoid", "optimizer=sgd"),
    # row 5's net: the same with ReLU (its 250k expanded images cost the same per image)
    "row5": ("experiment=nielsen/row5",),
    # row 8's net: two FC1000 layers with dropout 0.5 (row 9 votes five of them)
    "row8": ("experiment=nielsen/row8",),
    # the 784-100-10 sigmoid FC net
    "fc100": ("model=nielsen_fc", "activation=sigmoid", "optimizer=sgd"),
    # experiment=fast's net and optimizer (its first conv at stride 2, no first pooling)
    "fast": ("experiment=fast",),
    # the preset before it (stride 1, max-pooling after each conv): the figures dated before
    # 2026-12-07 in docs/benchmarks.md that name `experiment=fast` were measured on this net
    "fast_v1": ("experiment=fast_v1",),
}


def net_config(name: str) -> Config:
    """The composed Config of net `name` (one of NETS)."""
    return compose_config(*NETS[name])
