"""Training throughput of the scanned epoch that `cnn_jax.train.fit` compiles.

Data sit on the device; compile seconds are reported apart from run seconds; one JSON line per
measurement. Modes: "train" (fit's program), "novmap" (1 seed: vmapped vs unvmapped,
interleaved), "chunks" (the epoch in one call vs the CLI's 20 progress-reporting chunks,
interleaved), "seeds" (S seeds vmapped, and looped over one compiled one-seed program, vs S
sequential 1-seed runs), "concurrent" (S looped seeds one by one vs one per core at once,
interleaved).
  python benchmarks/bench_train.py --batch-size 10 128 --repeats 3
  python benchmarks/bench_train.py --mode seeds --seeds 5 --steps 500
  python benchmarks/bench_train.py --conv-impl xla --steps 200   # the pre-2026-11-21 conv
  python benchmarks/bench_train.py --mode chunks --batch-size 10 256   # step-progress overhead
  python benchmarks/bench_train.py --mode concurrent --model row5 --seeds 2 --fixed-order
"""

from __future__ import annotations

import os
import sys

for _i, _arg in enumerate(sys.argv if __name__ == "__main__" else []):  # jax reads it at import
    if _arg.startswith("--xla-flags="):
        os.environ["XLA_FLAGS"] = _arg.split("=", 1)[1]
    elif _arg == "--xla-flags" and _i + 1 < len(sys.argv):
        os.environ["XLA_FLAGS"] = sys.argv[_i + 1]

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from nets import NETS, net_config  # noqa: E402

from cnn_jax.config import Config, OptimizerConfig, TrainConfig  # noqa: E402
from cnn_jax.data import Splits  # noqa: E402
from cnn_jax.ops.conv import IMPLS as CONV_IMPLS  # noqa: E402
from cnn_jax.train import build  # noqa: E402
from cnn_jax.train.programs import EPOCH_CHUNKS  # noqa: E402
from cnn_jax.train.seeds import concurrent_seeds  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"

def load_train(n: int, data_dir: Path = DATA_DIR) -> tuple[np.ndarray, np.ndarray, str]:
    """The first n MNIST training images (uint8 NHWC) and labels; random bytes if absent."""
    try:
        from cnn_jax.data.idx import load_idx_dir

        arrays = load_idx_dir(data_dir)
        x, y = arrays["train_images"][:n, ..., None], arrays["train_labels"][:n]
        return x, y.astype(np.int32), "mnist"
    except Exception:  # noqa: BLE001 - the benchmark runs without the data too
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        return x, rng.integers(0, 10, n, dtype=np.int32), "random"


def make_config(model: str, batch_size: int, seeds: int, lr: float = 0.1,
                shuffle: bool = True, conv_impl: str = "auto",
                seed_batching: str = "auto", concurrent_seeds: int | None = None) -> Config:
    """Plain SGD (Nielsen's chapter-6 settings) on the net `model` of nets.NETS."""
    return Config(model=dataclasses.replace(net_config(model).model, conv_impl=conv_impl),
                  optimizer=OptimizerConfig("sgd", lr=lr, schedule="constant"),
                  train=TrainConfig(epochs=1, batch_size=batch_size, seeds=seeds, shuffle=shuffle,
                                    seed_batching=seed_batching,
                                    concurrent_seeds=concurrent_seeds, progress=False))


PROGRAMS = ("fit", "vmap", "loop", "plain", "chunked", "whole")


def compile_epoch(cfg: Config, x: jax.Array, y: jax.Array,
                  program: str = "fit") -> tuple[Callable, Any, float]:
    """(epoch(state, e) -> (state, losses), initial state, compile seconds) for one of PROGRAMS
    (e counted from 1, as `Program.epoch` counts).

    "fit": what `fit` runs (`build` with cfg's seed_batching); "vmap" / "loop": `build` with
    that seed_batching; "plain": one seed with no seed axis, `build`'s epoch function compiled
    with `jax.jit` directly; "chunked": the CLI's epoch, `EPOCH_CHUNKS` calls each waited for and
    reported; "whole": the same program called once per epoch. Compile seconds include `build`'s
    two (tiny) evaluation programs.
    """
    if program in ("chunked", "whole"):
        built = build(cfg, Splits(x, y, x[:1], y[:1], x[:1], y[:1]),
                      EPOCH_CHUNKS if program == "chunked" else 1)
        on_chunk = (lambda images: None) if program == "chunked" else None
        return (lambda st, e: built.epoch(st, e, on_chunk)), built.fresh().state, \
            built.compile_seconds
    if program != "fit":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(
            cfg.train, seed_batching="vmap" if program == "plain" else program))
    built = build(cfg, Splits(x, y, x[:1], y[:1], x[:1], y[:1]))
    state = built.fresh().state
    if program != "plain":
        return built.epoch, state, built.compile_seconds
    if cfg.train.seeds != 1:
        raise ValueError(f"program='plain' needs exactly one seed, got {cfg.train.seeds}")
    t0 = time.perf_counter()
    state = jax.tree_util.tree_map(lambda a: a[0], state)
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 1)
    fn = jax.jit(built.train_epoch, donate_argnums=0).lower(state, key, x, y).compile()
    seconds = time.perf_counter() - t0
    return (lambda st, e: fn(st, jax.random.fold_in(key, e - 1), x, y)), state, seconds


def time_epochs(cfg: Config, x: jax.Array, y: jax.Array, repeats: int, epochs: int = 1,
                program: str = "fit", warmup: int = 1) -> dict[str, Any]:
    """Compile once, run `warmup` untimed epochs, then time `repeats` x `epochs` epochs."""
    epoch, state, compile_s = compile_epoch(cfg, x, y, program)
    for w in range(warmup):  # first-touch page faults and caches: the first epoch runs slower
        state, losses = epoch(state, 10_000 + w)
    jax.block_until_ready(state)
    seconds, loss = [], float("nan")
    for r in range(repeats):
        t = time.perf_counter()
        for e in range(epochs):
            state, losses = epoch(state, r * epochs + e + 1)  # epochs count from 1
        loss = float(np.mean(np.asarray(losses)))  # waits for the device
        seconds.append((time.perf_counter() - t) / epochs)
    images = (x.shape[0] // cfg.train.batch_size) * cfg.train.batch_size * cfg.train.seeds
    med = statistics.median(seconds)
    return {"compile_s": round(compile_s, 3), "epoch_s": [round(s, 4) for s in seconds],
            "median_epoch_s": round(med, 4), "images_per_s": round(images / med, 1),
            "best_images_per_s": round(images / min(seconds), 1), "last_loss": round(loss, 5)}


def interleaved(run: Callable[..., dict[str, Any]], variants: dict[str, dict[str, Any]],
                repeats: int) -> dict[str, list[float]]:
    """Epoch seconds of `run(repeats=1, **kwargs)` for each variant, the variants taken in turn
    `repeats` times, so that machine noise hits them all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, kwargs in variants.items():
            seconds[name] += run(repeats=1, **kwargs)["epoch_s"]
    return seconds


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the requested measurements, print JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(NETS), default="nielsen_conv1")
    p.add_argument("--batch-size", type=int, nargs="+", default=[10])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed repeat")
    p.add_argument("--steps", type=int, default=None,
                   help="minibatches per epoch (default: all 50,000 images)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--fixed-order", action="store_true",
                   help="no shuffling: every seed sees the same minibatches (Nielsen's runs)")
    p.add_argument("--mode", choices=("train", "novmap", "chunks", "seeds", "concurrent"),
                   default="train")
    p.add_argument("--at-once", type=int, default=None,
                   help="--mode concurrent: seeds at once (default: one per CPU core)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs after compiling")
    p.add_argument("--conv-impl", choices=CONV_IMPLS, default="auto",
                   help="conv2d implementation the model uses")
    p.add_argument("--xla-flags", default=None,
                   help='XLA_FLAGS, set before jax is imported (write --xla-flags="--xla_...")')
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="MNIST IDX files")
    a = p.parse_args(argv)
    info = {"backend": jax.default_backend(), "jax": jax.__version__, "cpus": os.cpu_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "model": a.model,
            "shuffle": not a.fixed_order,
            "conv_impl": a.conv_impl}
    for bs in a.batch_size:
        n = min(a.steps * bs, 50_000) if a.steps else 50_000
        xs, ys, source = load_train(n, a.data_dir)
        x, y = jax.device_put(xs), jax.device_put(ys)
        base = {**info, "data": source, "batch_size": bs, "images_per_epoch": n // bs * bs}
        run = functools.partial(time_epochs, x=x, y=y, repeats=a.repeats, epochs=a.epochs,
                                warmup=a.warmup)
        if a.mode == "train":
            out = run(make_config(a.model, bs, a.seeds, a.lr, not a.fixed_order, a.conv_impl))
            print(json.dumps({**base, "mode": "fit", "seeds": a.seeds, **out}), flush=True)
        elif a.mode == "novmap":
            cfg = make_config(a.model, bs, 1, a.lr, not a.fixed_order, a.conv_impl)
            res = interleaved(run, {p: {"cfg": cfg, "program": p} for p in ("vmap", "plain")},
                              a.repeats)  # 1 seed
            med = {prog: statistics.median(s) for prog, s in res.items()}
            per_s = {prog: round(base["images_per_epoch"] / m) for prog, m in med.items()}
            print(json.dumps({**base, "mode": "novmap", "seeds": 1, "vmapped_epoch_s": res["vmap"],
                              "no_vmap_epoch_s": res["plain"],
                              "vmapped_images_per_s": per_s["vmap"],
                              "no_vmap_images_per_s": per_s["plain"],
                              "no_vmap_speedup": round(med["vmap"] / med["plain"], 3)}),
                  flush=True)
        elif a.mode == "chunks":
            cfg = make_config(a.model, bs, a.seeds, a.lr, not a.fixed_order, a.conv_impl)
            res = interleaved(run, {p: {"cfg": cfg, "program": p} for p in ("whole", "chunked")},
                              a.repeats)
            med = {prog: statistics.median(s) for prog, s in res.items()}
            print(json.dumps({**base, "mode": "chunks", "seeds": a.seeds, "chunks": EPOCH_CHUNKS,
                              "whole_epoch_s": res["whole"], "chunked_epoch_s": res["chunked"],
                              "overhead_pct": round(100 * (med["chunked"] / med["whole"] - 1),
                                                    2)}), flush=True)
        elif a.mode == "concurrent":
            res = interleaved(run, {name: {"cfg": make_config(
                a.model, bs, a.seeds, a.lr, not a.fixed_order, a.conv_impl, "loop", at_once)}
                for name, at_once in (("one_by_one", 1), ("at_once", a.at_once))}, a.repeats)
            med = {name: statistics.median(s) for name, s in res.items()}
            images = base["images_per_epoch"] * a.seeds
            print(json.dumps({**base, "mode": "concurrent", "seeds": a.seeds,
                              "at_once": concurrent_seeds(a.at_once, a.seeds),
                              "one_by_one_epoch_s": res["one_by_one"],
                              "at_once_epoch_s": res["at_once"],
                              "one_by_one_images_per_s": round(images / med["one_by_one"]),
                              "at_once_images_per_s": round(images / med["at_once"]),
                              "speedup": round(med["one_by_one"] / med["at_once"], 3)}),
                  flush=True)
        else:
            cfg = make_config(a.model, bs, a.seeds, a.lr, not a.fixed_order, a.conv_impl)
            vmapped, mapped = run(cfg, program="vmap"), run(cfg, program="loop")
            one = run(make_config(a.model, bs, 1, a.lr, not a.fixed_order, a.conv_impl))
            seq_s = a.seeds * one["median_epoch_s"]  # S sequential runs of the same program
            print(json.dumps({**base, "mode": "seeds", "seeds": a.seeds,
                              "vmapped_epoch_s": vmapped["median_epoch_s"],
                              "vmapped_compile_s": vmapped["compile_s"],
                              "loop_epoch_s": mapped["median_epoch_s"],
                              "one_seed_epoch_s": one["median_epoch_s"],
                              "one_seed_compile_s": one["compile_s"],
                              "sequential_epoch_s": round(seq_s, 4),
                              "vmap_speedup": round(seq_s / vmapped["median_epoch_s"], 2),
                              "loop_speedup": round(seq_s / mapped["median_epoch_s"], 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
