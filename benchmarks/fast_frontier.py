"""The accuracy / time frontier of a two-objective search: a sweep dir -> Markdown table + plot.

Reads `optimization_results.yaml` of `python -m experiments.train -m hparams_search=fast_frontier`
(its Pareto front, fastest first) and every trial's metrics.json, prints the front as a Markdown
table (validation accuracy, training seconds, the trial's overrides) and draws every trial with
the front marked. Nothing is trained here.
  python benchmarks/fast_frontier.py SWEEP_DIR --plot docs/figures/fast_frontier.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

SHORT = {  # override key -> column name
    "model.conv.0.features": "c0", "model.conv.0.stride": "s0", "model.conv.0.pool.kind": "p0",
    "model.conv.1.features": "c1", "model.conv.1.stride": "s1", "model.conv.1.pool.kind": "p1",
    "model.dense.0.units": "fc", "train.batch_size": "batch", "optimizer.lr": "lr",
    "optimizer.warmup_fraction": "warm-up", "optimizer.label_smoothing": "smooth",
    "data.train_limit": "images", "train.epochs": "epochs",
}


def trials(sweep: Path) -> list[dict]:
    """Every trial that finished ok: its dir name, val_acc, train_seconds."""
    out = []
    for metrics in sorted(sweep.glob("*/metrics.json")):
        record = json.loads(metrics.read_text())
        if record.get("status") == "ok":
            out.append({"trial": metrics.parent.name, "val_acc": record["val_acc"],
                        "train_seconds": record["train_seconds"]})
    return out


def value(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def front_table(results: dict) -> str:
    """The Pareto front as Markdown, fastest first."""
    keys = [k for k in SHORT if any(k in t["params"] for t in results["best_trials"])]
    head = ["trial", "val acc %", "train s", *(SHORT[k] for k in keys)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in results["best_trials"]:
        cells = [str(t["trial"]), f"{100 * t['values']['val_acc']:.2f}",
                 f"{t['values']['train_seconds']:.1f}",
                 *(value(t["params"].get(k, "")) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(points: list[dict], results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnn_jax.results.ablation_figure import save_figure_atomic

    front = sorted(results["best_trials"], key=lambda t: t["values"]["train_seconds"])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([p["train_seconds"] for p in points], [100 * p["val_acc"] for p in points],
               s=14, color="0.6", label="trial")
    ax.plot([t["values"]["train_seconds"] for t in front],
            [100 * t["values"]["val_acc"] for t in front], "o-", color="C3",
            label="Pareto front")
    ax.set_xlabel("training seconds (epochs and their evaluation, compile excluded)")
    ax.set_ylabel("validation accuracy %")
    ax.set_title("fast_frontier: every trial, one seed each")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path, help="the search's sweep dir")
    p.add_argument("--plot", type=Path, default=None, help="write the plot here (png)")
    a = p.parse_args(argv)
    results_file = a.sweep / "optimization_results.yaml"
    if not results_file.is_file():
        print(f"error: {results_file} does not exist (not a search's sweep dir?)",
              file=sys.stderr)
        return 2
    results = yaml.safe_load(results_file.read_text())
    if "best_trials" not in results:
        print(f"error: {results_file} is a single-objective search's (no Pareto front)",
              file=sys.stderr)
        return 2
    points = trials(a.sweep)
    print(f"{len(points)} trials ok of {results['n_trials']}; Pareto front, fastest first:\n")
    print(front_table(results))
    if a.plot:
        plot(points, results, a.plot)
        print(f"\nplot: {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
