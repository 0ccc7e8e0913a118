"""Run dir -> filters, feature maps, curves, confusion, mistakes PNGs.

`python -m experiments.inspect RUN_DIR [--out DIR] [--digit INDEX] [--seed-index K]`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def write_figures(run_dir: Path, out: Path, digit: int = 0, seed_index: int = 0,
                  data_dir: str | None = None) -> list[Path]:
    """Write the run's figures into `out` (best-validation params of one seed); return paths."""
    import dataclasses

    from cnn_jax.data import load_splits
    from cnn_jax.models import ConvNet
    from cnn_jax.results import figures as F
    from cnn_jax.results.plots import save_figure_atomic
    from cnn_jax.train.checkpoint import load_checkpoint

    cfg = F.config_from_json(json.loads((run_dir / "config.json").read_text()))
    data = dataclasses.replace(cfg.data, dir=data_dir) if data_dir else cfg.data
    best = load_checkpoint(run_dir / "checkpoints")["best"]
    seeds = [cfg.seed + i for i in range(cfg.train.seeds)]
    if not 0 <= seed_index < len(seeds):
        raise ValueError(f"--seed-index={seed_index} is out of range; the run has {len(seeds)}")
    params, seed = F.seed_params(best, seed_index), seeds[seed_index]
    splits = load_splits(data)
    if not 0 <= digit < len(splits.test_y):
        raise ValueError(f"--digit={digit} is out of range; the test set has {len(splits.test_y)}")
    model = ConvNet(cfg.model)
    probs = F.predict_probs(model, params, splits.test_x)
    pred, y = probs.argmax(1), splits.test_y
    tag = f"{cfg.model.name}, seed {seed}, best-validation params"
    caption = (f"input: test image #{digit}, label {int(y[digit])}, predicted {int(pred[digit])}"
               f" (p={probs[digit].max():.1%}); {tag}")
    figs = {}
    if cfg.model.conv:
        figs["filters"] = F.filters_figure(params["conv0"]["kernel"], f"conv0 kernels ({tag})\n"
                                           "dark = positive weight (responds to ink)")
        maps = F.conv_maps(model, params, splits.test_x[digit])
        figs["feature_maps"] = F.feature_maps_figure(splits.test_x[digit], caption, maps)
    else:
        print("note: no conv layers (FC-only net): skipping filters.png and feature_maps.png")
    history = F.read_history(run_dir / "metrics.jsonl")
    if history:
        figs["curves"] = F.curves_figure(history, seeds, F.describe(cfg))
    else:
        print("note: no metrics.jsonl: skipping curves.png")
    acc = float((pred == y).mean())
    figs["confusion"] = F.confusion_figure(
        F.confusion_matrix(y, pred, cfg.model.num_classes),
        f"test confusion ({tag})\naccuracy {acc:.2%}, {int((pred != y).sum())} errors")
    worst = F.worst_mistakes(probs, y)
    figs["mistakes"] = F.mistakes_figure(
        splits.test_x[worst], y[worst], probs[worst], worst,
        f"most confident test mistakes ({tag})\n#test index: label → predicted")
    print(f"test accuracy (seed {seed}, best-validation params): {acc:.2%}")
    return [save_figure_atomic(fig, out / f"{name}.png", dpi=100) for name, fig in figs.items()]


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the figures, print their paths; exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m experiments.inspect", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run dir written by experiments.train")
    parser.add_argument("--out", type=Path, default=None, help="output dir (default RUN/figures)")
    parser.add_argument("--digit", type=int, default=0, help="test image for feature maps")
    parser.add_argument("--seed-index", type=int, default=0, help="which of the run's seeds")
    parser.add_argument("--data-dir", default=None, help="override the config's data.dir")
    args = parser.parse_args(argv)
    run_dir = args.run_dir
    for need in (run_dir, run_dir / "config.json", run_dir / "checkpoints"):
        if not need.exists():
            print(f"error: {need}: not found (not a run dir with a checkpoint?)", file=sys.stderr)
            return 2
    from cnn_jax.config import ConfigError
    from cnn_jax.data import DataError

    try:
        paths = write_figures(run_dir, args.out or run_dir / "figures", args.digit,
                              args.seed_index, args.data_dir)
    except (OSError, ValueError, KeyError, TypeError, ConfigError, DataError) as exc:
        print(f"error: {run_dir}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
              file=sys.stderr)
        return 2
    print("\n".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
