"""What a run shows while it trains: a header of what is trained where, and a step-level progress
report inside each epoch (a bar with images/s and ETA on a terminal, plain periodic lines
elsewhere, e.g. CI or SLURM logs)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import jax
from tqdm.auto import tqdm

from cnn_jax.config import Config
from cnn_jax.data.registry import folder
from cnn_jax.data.source import dataset_of
from cnn_jax.data.splits import validation_note
from cnn_jax.models.summary import describe, model_costs, model_name
from cnn_jax.train.seeds import concurrent_seeds

log = logging.getLogger("cnn_jax.train")
LINE_EVERY_S = 30.0  # a plain progress line at most this often when not on a terminal


def _cache_state() -> str:
    path = jax.config.jax_compilation_cache_dir
    if not path:
        return "off"
    root = Path(path).expanduser()
    entries = sum(1 for p in root.glob("*") if p.is_file()) if root.is_dir() else 0
    return f"{root} ({entries} entries{', cold' if not entries else ''})"


def reduced_note(d: Any) -> str:
    """' (reduced: val first N, test first M)' for a quick look at a budget, else ''."""
    parts = [f"{name} first {n:,}" for name, n in (("val", d.val_limit), ("test", d.test_limit))
             if n is not None]
    return f" (reduced: {', '.join(parts)})" if parts else ""


def header_lines(cfg: Config, splits: Any, source: str, seeds: list[int],
                 batching: str) -> list[str]:
    """A few lines: model, data and split sizes, seeds and how they run, device, compile cache.

    `source` is the data source that served the splits ("idx", "tfds" or "own"), `batching` how the
    seeds run ("vmap" or "loop", after resolving "auto").
    """
    m, d, t = cfg.model, cfg.data, cfg.train
    entry = dataset_of(d.name, d.source, d.data_dir)
    params, flops = model_costs(m)
    n_train, n_val, n_test = len(splits.train_y), len(splits.val_y), len(splits.test_y)
    steps = n_train // t.batch_size
    at_once = (concurrent_seeds(t.concurrent_seeds, len(seeds), t.devices)
               if batching == "loop" else 1)
    knobs = f"train.seed_batching={t.seed_batching}"
    if len(seeds) == 1:
        run = "one program"
    elif batching == "vmap":
        run = "vmapped in one program"
    elif at_once == 1:
        run = "one compiled one-seed program, seed after seed"
    else:
        run = f"one compiled one-seed program, {at_once} seeds at a time"
        requested = "null" if t.concurrent_seeds is None else t.concurrent_seeds
        knobs += f", train.concurrent_seeds={requested}"
    devices = jax.devices()[: t.devices]
    kind = devices[0].device_kind
    where = devices[0].platform + ("" if kind == devices[0].platform else f" ({kind})")
    origin = {"idx": f"IDX files in {Path(folder(d) or '.').expanduser().resolve()}",
              "own": "its entry's loader"}.get(source, "TFDS")
    h, w, c = entry.image_shape
    return [
        f"model {model_name(m)}: {describe(m)}; {params:,} params"
        + ("" if flops is None else f", {flops / 1e6:.2f} MFLOPs/image (forward)"),
        f"data {d.name} {h}x{w}x{c}, {entry.num_classes} classes ({origin}, protocol "
        f"{d.protocol}: {validation_note(d.protocol, entry.own_validation)}"
        f"{', expanded x5' if d.expand else ''}): "
        f"train {n_train:,} / val {n_val:,} / test {n_test:,}{reduced_note(d)}; minibatch "
        f"{t.batch_size} -> "
        f"{steps:,} steps/epoch, {t.epochs} epochs",
        f"seeds {', '.join(map(str, seeds))}: {run} ({knobs})",
        f"device: {where}" + (f" x{len(devices)} (data parallel)" if len(devices) > 1 else "")
        + f"; compile cache: {_cache_state()}",
    ]


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v == v]  # NaN (a diverged seed) left out
    return sum(finite) / len(finite) if finite else float("nan")


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    """One line per finished epoch (kept in the run's train.log): loss, accuracies, time."""
    seeds = len(record["train_loss"])
    val, test = (100 * _mean(record[k]) for k in ("val_acc", "test_acc"))
    means = f" (means of {seeds} seeds)" if seeds > 1 else ""
    return (f"epoch {record['epoch']}/{epochs}: loss {_mean(record['train_loss']):.4f}, "
            f"val {val:.2f}%, test {test:.2f}%{means}; {record['seconds']:.1f} s")


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class EpochProgress:
    """Step-level progress of one epoch: `advance(images)` after each chunk, `close()` at the end.

    On a terminal: a tqdm bar (images done, images/s, ETA) that disappears when the epoch ends.
    Elsewhere: a plain `epoch e/E: done/total images (p%), r img/s, ETA` line at most every
    `every_s` seconds. Disabled: nothing.
    """

    def __init__(self, epoch: int, epochs: int, total: int, enabled: bool = True,
                 stream: TextIO | None = None, every_s: float = LINE_EVERY_S) -> None:
        stream = stream or sys.stderr
        self.epoch, self.epochs, self.total, self.done = epoch, epochs, total, 0
        self.start = self.last_line = time.perf_counter()
        self.every_s = every_s
        self.bar = None
        self.lines = enabled and not stream.isatty()
        if enabled and stream.isatty():
            self.bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="img",
                            unit_scale=True, leave=False, file=stream, dynamic_ncols=True)

    def advance(self, images: int) -> None:
        """`images` more images trained."""
        self.done += images
        if self.bar is not None:
            self.bar.update(images)
        now = time.perf_counter()
        if self.lines and now - self.last_line >= self.every_s and self.done < self.total:
            self.last_line = now
            log.info("%s", self.line(now - self.start))

    def line(self, elapsed: float) -> str:
        """The plain progress line after `elapsed` seconds."""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return (f"epoch {self.epoch}/{self.epochs}: {self.done:,}/{self.total:,} images "
                f"({100 * self.done / self.total:.0f}%), {rate:,.0f} img/s, ETA {_eta(eta)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
