"""Run dir -> filters, feature maps, curves, confusion, mistakes PNGs (docs/inspect.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from cnn_jax.errors import first_line


def write_figures(run_dir: Path, out: Path, digit: int = 0, seed_index: int = 0,
                  data_dir: str | None = None) -> list[Path]:
    """Write the run's figures into `out`, print notes and the test accuracy; return the paths."""
    from cnn_jax.config import ModelConfig, arch_of, from_mapping
    from cnn_jax.data import load_splits
    from cnn_jax.results import figures, records
    from cnn_jax.results.ablation_figure import save_figure_atomic
    from cnn_jax.train.checkpoint import load_checkpoint

    cfg = from_mapping(json.loads((run_dir / "config.json").read_text()))
    best = load_checkpoint(run_dir / "checkpoints")["best"]
    splits = load_splits(dataclasses.replace(cfg.data, dir=data_dir or cfg.data.dir))
    history = records.read_epochs(run_dir)
    figs, acc = figures.run_figures(cfg, best, splits, history, seed_index, digit)
    if not figures.has_conv_figures(cfg.model):
        what = ("no conv layers (FC-only net)" if isinstance(cfg.model, ModelConfig)
                else f"model {arch_of(cfg.model)} is not a ConvNet")
        print(f"note: {what}: no filters.png or feature_maps.png")
    if not history:
        print("note: no metrics.jsonl: no curves.png")
    print(f"test accuracy (seed {cfg.seed + seed_index}, best-validation params): {acc:.2%}")
    return [save_figure_atomic(fig, out / f"{name}.png", dpi=100) for name, fig in figs.items()]


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the figures, print their paths; exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m experiments.inspect_run", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run dir written by experiments.train")
    parser.add_argument("--out", type=Path, default=None, help="output dir (default RUN/figures)")
    parser.add_argument("--digit", type=int, default=0, help="test image for the feature maps")
    parser.add_argument("--seed-index", type=int, default=0, help="which of the run's seeds")
    parser.add_argument("--data-dir", default=None, help="override the run's data.dir")
    args = parser.parse_args(argv)
    for need in (args.run_dir, args.run_dir / "config.json", args.run_dir / "checkpoints"):
        if not need.exists():
            print(f"error: {need}: not found (not a run dir with a checkpoint?)", file=sys.stderr)
            return 2
    try:
        paths = write_figures(args.run_dir, args.out or args.run_dir / "figures", args.digit,
                              args.seed_index, args.data_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ConfigError, DataError included
        print(f"error: {args.run_dir}: {first_line(exc)}", file=sys.stderr)
        return 2
    print("\n".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
