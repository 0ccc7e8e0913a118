"""Sweep dir -> table.md, table.csv, table.tex, ablation.png: `python -m experiments.table DIR`.

The cells are named by the `labels:` of the experiment file the sweep ran (`experiment=NAME`:
conf/experiment/NAME.yaml; `cnn_jax.results.labels`), else by their swept `key=value`s."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def write_outputs(sweep_dir: str | Path, out_dir: str | Path | None = None,
                  title: str | None = None) -> tuple[str, list[Path]]:
    """Write the sweep's tables and figure into out_dir (default: the sweep dir); return the md."""
    from cnn_jax.atomic import write_atomic
    from cnn_jax.results import ablation_figure, tables  # here, so a mistyped path fails fast
    from cnn_jax.results.labels import read_labels

    sweep_dir = Path(sweep_dir)
    runs = tables.collect_runs(sweep_dir)
    if runs.empty:
        raise ValueError(f"{sweep_dir}: no runs found (no .hydra/overrides.yaml or metrics.json)")
    out = Path(out_dir) if out_dir is not None else sweep_dir
    title = title or f"Ablation: {'/'.join(sweep_dir.resolve().parts[-2:])}"
    labels = read_labels(tables.experiment_of(runs))  # the cells' names in its experiment file
    summary = tables.summarize(runs, labels)
    markdown = tables.to_markdown(summary, runs, title, labels)
    paths = [write_atomic(out / "table.md", markdown),
             write_atomic(out / "table.csv", tables.to_csv(summary)),
             write_atomic(out / "table.tex", tables.to_latex(summary, runs, title)),
             ablation_figure.ablation_dots(summary, out / "ablation.png", title, runs)]
    return markdown, paths


def is_run_dir(path: Path) -> bool:
    """Whether `path` is a single run's dir (its own records), not a sweep's."""
    return (path / "metrics.json").is_file() or (path / ".hydra" / "overrides.yaml").is_file()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the outputs, print the Markdown; exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m experiments.table", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="Hydra multirun dir")
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: sweep_dir)")
    parser.add_argument("--title", default=None, help="table and figure title")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir}: no such directory", file=sys.stderr)
        return 2
    if is_run_dir(args.sweep_dir):
        print(f"error: {args.sweep_dir} is one run's dir, not a sweep's; its results are in its "
              "metrics.json (a table compares the runs of a sweep dir)", file=sys.stderr)
        return 2
    try:
        markdown, _ = write_outputs(args.sweep_dir, args.out, args.title)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # a job's unreadable record
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
