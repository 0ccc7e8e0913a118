"""CPU/GPU training throughput of the scanned, seed-vmapped epoch that `fit` runs.

One JSON line per measurement. Examples:
  python benchmarks/bench_train.py --model nielsen_conv1 --batch-size 10 --repeats 3
  python benchmarks/bench_train.py --mode seeds --seeds 5 --steps 1000
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__" and "--xla-flags" in sys.argv:  # must be set before jax is imported
    os.environ["XLA_FLAGS"] = sys.argv[sys.argv.index("--xla-flags") + 1]

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from cnn_jax.config import (  # noqa: E402
    Config,
    ConvBlockConfig,
    DenseConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
)
from cnn_jax.models.convnet import ConvNet  # noqa: E402
from cnn_jax.train import init_states, make_optimizer, make_train_epoch, make_train_step  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
MODELS = {
    "nielsen_conv1": ModelConfig(conv=(ConvBlockConfig(20),), dense=(DenseConfig(100),)),
    "nielsen_conv2": ModelConfig(
        conv=(ConvBlockConfig(20), ConvBlockConfig(40)), dense=(DenseConfig(100),)
    ),
    "fc100": ModelConfig(conv=(), dense=(DenseConfig(100),)),
}


def load_train(n: int, data_dir: Path = DATA_DIR) -> tuple[np.ndarray, np.ndarray, str]:
    """The first n MNIST training images (uint8 NHWC) and labels; random bytes if absent."""
    try:
        from cnn_jax.data.idx import load_idx_dir

        arrays = load_idx_dir(data_dir)
        x, y = arrays["train_images"][:n, ..., None], arrays["train_labels"][:n]
        return x, y.astype(np.int32), "mnist"
    except Exception:  # noqa: BLE001 - benchmarks run anywhere
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        return x, rng.integers(0, 10, n, dtype=np.int32), "random"


def build_epoch(cfg: Config, n: int, vmap: bool = True) -> tuple[Callable, object]:
    """(jitted epoch fn, initial state) built like `fit`; vmap=False drops the seed axis."""
    model = ConvNet(cfg.model)
    tx = make_optimizer(cfg.optimizer, n // cfg.train.batch_size, cfg.train.epochs)
    step = make_train_step(model, tx, cfg.optimizer.label_smoothing)
    epoch = make_train_epoch(step, n, cfg.train.batch_size, cfg.train.shuffle)
    seeds = [cfg.seed + i for i in range(cfg.train.seeds)]
    state = init_states(model, tx, seeds)
    if vmap:
        return jax.jit(jax.vmap(epoch, in_axes=(0, 0, None, None)), donate_argnums=0), state
    if len(seeds) != 1:
        raise ValueError("vmap=False needs exactly one seed")
    return jax.jit(epoch, donate_argnums=0), jax.tree_util.tree_map(lambda a: a[0], state)


def time_epochs(cfg: Config, x: jax.Array, y: jax.Array, repeats: int, vmap: bool = True) -> dict:
    """Compile once, then time `repeats` full epochs; returns seconds and images/s (median)."""
    fn, state = build_epoch(cfg, x.shape[0], vmap)
    keys = jnp.stack([jax.random.PRNGKey(cfg.seed + i) for i in range(cfg.train.seeds)])
    keys = keys if vmap else keys[0]
    t0 = time.perf_counter()
    compiled = fn.lower(state, keys, x, y).compile()
    compile_s = time.perf_counter() - t0
    seconds = []
    for r in range(repeats):
        rkeys = jax.random.fold_in(keys, r) if not vmap else jax.vmap(jax.random.fold_in,
                                                                      (0, None))(keys, r)
        t = time.perf_counter()
        state, loss = compiled(state, rkeys, x, y)
        loss = float(np.mean(np.asarray(loss)))
        seconds.append(time.perf_counter() - t)
    images = (x.shape[0] // cfg.train.batch_size) * cfg.train.batch_size * cfg.train.seeds
    med = statistics.median(seconds)
    return {"compile_s": round(compile_s, 3), "seconds": [round(s, 4) for s in seconds],
            "median_s": round(med, 4), "images_per_s": round(images / med, 1),
            "last_loss": round(loss, 5)}


def make_config(model: str, batch_size: int, seeds: int, lr: float) -> Config:
    """The benchmark configuration: plain SGD on one of MODELS."""
    return Config(model=MODELS[model], optimizer=OptimizerConfig(lr=lr),
                  train=TrainConfig(epochs=1, batch_size=batch_size, seeds=seeds))


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the requested measurements, print JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="nielsen_conv1")
    p.add_argument("--batch-size", type=int, nargs="+", default=[10])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed repeat")
    p.add_argument("--steps", type=int, default=None, help="minibatches per epoch (default: 50k)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--mode", choices=("train", "novmap", "seeds"), default="train",
                   help="train: fit's vmapped epoch; novmap: S=1 without vmap (and vmapped, "
                        "side by side); seeds: S seeds vmapped vs S sequential 1-seed runs")
    p.add_argument("--xla-flags", default=None, help="XLA_FLAGS to set before importing jax")
    a = p.parse_args(argv)
    info = {"backend": jax.default_backend(), "jax": jax.__version__, "cpus": os.cpu_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "model": a.model}
    for bs in a.batch_size:
        n = (a.steps or 50_000 // bs) * bs * a.epochs
        xs, ys, source = load_train(n)
        if a.epochs > 1:  # an "epoch" of epochs*steps minibatches: same program, longer scan
            pass
        x, y = jax.device_put(xs), jax.device_put(ys)
        base = {**info, "data": source, "batch_size": bs, "images_per_epoch": n}
        if a.mode == "train":
            cfg = make_config(a.model, bs, a.seeds, a.lr)
            out = time_epochs(cfg, x, y, a.repeats)
            print(json.dumps({**base, "mode": "vmapped", "seeds": a.seeds, **out}), flush=True)
        elif a.mode == "novmap":
            cfg = make_config(a.model, bs, 1, a.lr)
            for r in range(a.repeats):  # interleave so that machine noise hits both alike
                for vm in (True, False):
                    out = time_epochs(cfg, x, y, 1, vmap=vm)
                    mode = "vmapped" if vm else "no_vmap"
                    print(json.dumps({**base, "mode": mode, "seeds": 1, "round": r, **out}),
                          flush=True)
        else:
            many = make_config(a.model, bs, a.seeds, a.lr)
            vm = time_epochs(many, x, y, a.repeats)
            seq = [time_epochs(make_config(a.model, bs, 1, a.lr), x, y, a.repeats)
                   for _ in range(a.seeds)]
            seq_s = sum(r["median_s"] for r in seq)
            seq_c = sum(r["compile_s"] for r in seq)
            print(json.dumps({**base, "mode": "seeds", "seeds": a.seeds,
                              "vmapped_s": vm["median_s"], "vmapped_compile_s": vm["compile_s"],
                              "sequential_s": round(seq_s, 4), "sequential_compile_s": seq_c,
                              "speedup": round(seq_s / vm["median_s"], 2),
                              "speedup_with_compile": round(
                                  (seq_s + seq_c) / (vm["median_s"] + vm["compile_s"]), 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
