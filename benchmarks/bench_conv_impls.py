"""Side-by-side images/s of one scanned training epoch for conv2d impls ("patches" vs "xla").

python benchmarks/bench_conv_impls.py [--cases conv1_b10 ...] [--repeats 2]
(a short epoch of 1280 images, data on the device)
"""

import argparse
import dataclasses
import time

import jax
import numpy as np
from nets import net_config

from cnn_jax.config import Config, ModelConfig, OptimizerConfig, TrainConfig
from cnn_jax.data import Splits
from cnn_jax.train import build

CASES = {"fast_b64": ("fast", 64), "conv1_b10": ("nielsen_conv1", 10),
         "conv2_b10": ("nielsen_conv2", 10)}  # (a net of nets.NETS, minibatch)
N = 1280


def images_per_sec(model: ModelConfig, batch: int, impl: str, repeats: int = 2) -> float:
    """Best of `repeats` timed epochs after a compile-and-warm-up call."""
    cfg = Config(model=dataclasses.replace(model, conv_impl=impl),
                 optimizer=OptimizerConfig("sgd", lr=0.01, schedule="constant"),
                 train=TrainConfig(epochs=1, batch_size=batch, progress=False))
    x, y = np.ones((N, 28, 28, 1), np.uint8), np.zeros((N,), np.int32)
    program = build(cfg, Splits(x, y, x[:batch], y[:batch], x[:batch], y[:batch]))
    state, _ = jax.block_until_ready(program.epoch(program.fresh().state, 1))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        state, _ = jax.block_until_ready(program.epoch(state, 1))
        best = min(best, time.perf_counter() - t)
    return N / best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    p.add_argument("--repeats", type=int, default=2, help="timed epochs per variant (best of)")
    args = p.parse_args(argv)
    for name in args.cases:
        net, batch = CASES[name]
        model = net_config(net).model
        for impl in ("patches", "xla"):
            ips = images_per_sec(model, batch, impl, args.repeats)
            print(f"{name} {impl} {ips:.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
