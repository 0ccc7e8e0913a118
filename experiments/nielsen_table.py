"""python -m experiments.nielsen_table RUNS_DIR [--out FILE]: Nielsen's ch.6 table from row runs.

RUNS_DIR holds one run dir per row (row1, row2, ...), each made by
`python -m experiments.train experiment=nielsen/rowN hydra.run.dir=RUNS_DIR/rowN`. A run stopped
early is read from its metrics.jsonl: the best-validation protocol over the epochs it finished.
`--out FILE` replaces the table inside FILE when it already holds one (the prose around it is
kept), and writes the table alone otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cnn_jax.results import records
from cnn_jax.train.loop import per_seed_summary

BOOK = {"row1": 97.80, "row2": 98.78, "row3": 99.06, "row4": 99.23, "row5": 99.37,
        "row6": 99.46, "row7": 99.43, "row8": 99.60, "row9": 99.67}


def row_result(run_dir: Path) -> dict | None:
    """Per-seed best-val test accuracies, epochs done and planned, wall seconds of one row run."""
    history = records.read_epochs(run_dir)
    if not history:
        return None
    config = json.loads((run_dir / records.CONFIG).read_text())
    seeds = [config["seed"] + i for i in range(config["train"]["seeds"])]
    per_seed = per_seed_summary(history, seeds)
    metrics = records.read_metrics(run_dir) or {}
    accs = [100 * s["test_acc"] for s in per_seed if s["test_acc"] is not None]
    return {"accs": accs, "epochs": len(history), "planned": config["train"]["epochs"],
            "seconds": sum(h["seconds"] for h in history), "finished": bool(metrics),
            "vote": metrics.get("vote_test_acc")}


TABLE_START = "| row | book |"  # how the table begins, in this and in older layouts
HEADER = (f"{TABLE_START} ours: mean ± std | best seed | best - book (pp) | seeds | epochs | "
          "train time |")
COLUMNS = HEADER.count("|") - 1


def replace_table(document: str, new_table: str) -> str:
    """`document` with its row table (TABLE_START up to the first non-table line) replaced."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(TABLE_START)), None)
    if start is None:
        return new_table
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + new_table + "".join(lines[end:])


def table(runs_dir: Path) -> str:
    """The Markdown table: book vs ours (mean ± std, best), seeds, epochs, wall time."""
    lines = [HEADER, "|" + "---|" * COLUMNS]
    for row, book in BOOK.items():
        r = row_result(runs_dir / row)
        if r is None:
            lines.append(f"| {row} | {book:.2f}% | not yet run |" + " |" * (COLUMNS - 3))
            continue
        accs = np.array(r["accs"])
        std = accs.std(ddof=1) if len(accs) > 1 else 0.0
        ours = f"{accs.mean():.2f}% ± {std:.2f}"
        if r["vote"] is not None:
            ours += f" (vote {100 * r['vote']:.2f}%)"
        epochs = f"{r['epochs']}/{r['planned']}" + ("" if r["finished"] else " (stopped)")
        lines.append(f"| {row} | {book:.2f}% | {ours} | {accs.max():.2f}% | "
                     f"{accs.max() - book:+.2f} | {len(accs)} | {epochs} | "
                     f"{r['seconds'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not args.runs_dir.is_dir():
        print(f"error: runs_dir {args.runs_dir} is not a directory", file=sys.stderr)
        return 2
    text = table(args.runs_dir)
    if args.out:
        old = args.out.read_text() if args.out.exists() else ""
        records.write_text_atomic(args.out, replace_table(old, text))
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
