"""python -m experiments.nielsen_table RUNS_DIR [--out FILE]: Nielsen's ch.6 table from row runs.

RUNS_DIR holds one run dir per row (row1, row2, ...), each made by
`python -m experiments.train experiment=nielsen/rowN hydra.run.dir=RUNS_DIR/rowN`; rows 6 and 7
are sweeps over `width` (`-m ... width=300,1000 hydra.sweep.dir=RUNS_DIR/row6`), one line per
width. Without a row8 dir, row 8 is read from the first 3 seeds of row 9's run (5 row-8 nets).
A run stopped early is read from its metrics.jsonl: the best-validation protocol over the epochs
it finished. `--out FILE` replaces the table inside FILE when it already holds one (the prose
around it is kept), and writes the table alone otherwise; a row with no run dir under RUNS_DIR
keeps its measured line from FILE, so a runs dir holding only some rows updates those rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cnn_jax.atomic import write_atomic
from cnn_jax.protocol import per_seed_summary, seeds_of
from cnn_jax.results import records, rundir

# (line, run dir under RUNS_DIR, FC widths picking a job of a width sweep, book's test accuracy)
ROWS = (("row1", "row1", None, 97.80), ("row2", "row2", None, 98.78),
        ("row3", "row3", None, 99.06), ("row4", "row4", None, 99.23),
        ("row5", "row5", None, 99.37),
        ("row6 FC300", "row6", (300,), 99.46), ("row6 FC1000", "row6", (1000,), 99.43),
        ("row7 100+100", "row7", (100, 100), 99.43), ("row7 300+300", "row7", (300, 300), 99.48),
        ("row7 1000+1000", "row7", (1000, 1000), 99.47),
        ("row8", "row8", None, 99.60), ("row9", "row9", None, 99.67))
BOOK_ROW9_ERRORS = 33
TEST_IMAGES = 10_000  # MNIST's t10k, every row's test set
ROW8_SEEDS_IN_ROW9 = 3  # row 8 = the first 3 of row 9's 5 row-8 nets when it has no run of its own


def row_dir(runs_dir: Path, name: str, widths: tuple[int, ...] | None) -> Path | None:
    """The run dir of a line: RUNS_DIR/name, or the job of its width sweep with these FC widths."""
    if widths is None:
        return runs_dir / name if (runs_dir / name / records.CONFIG).is_file() else None
    for config in sorted((runs_dir / name).glob(f"**/{records.CONFIG}")):
        units = tuple(d["units"] for d in json.loads(config.read_text())["model"]["dense"])
        if units == widths:
            return config.parent
    return None


def row_result(run_dir: Path, max_seeds: int | None = None) -> dict | None:
    """Per-seed best-val test accuracies, epochs done and planned, wall seconds of one row run
    (its first `max_seeds` seeds when given; the vote then belongs to the whole run, not them)."""
    history = records.read_epochs(run_dir)
    if not history:
        return None
    config = json.loads((run_dir / records.CONFIG).read_text())
    seeds = seeds_of(config)[:max_seeds]
    per_seed = per_seed_summary(history, seeds)
    metrics = records.read_metrics(run_dir) or {}
    accs = [100 * s["test_acc"] for s in per_seed if s["status"] == "ok"]  # as the tables do
    return {"accs": accs, "diverged": len(per_seed) - len(accs), "epochs": len(history),
            "planned": config["train"]["epochs"], "seconds": sum(h["seconds"] for h in history),
            "finished": metrics.get("status") in records.FINISHED,
            "training": rundir.holder(run_dir) is not None,
            "vote": None if max_seeds else metrics.get("vote_test_acc"),
            "seeds": seeds}


NOT_RUN, NO_EPOCH = "not yet run", "started, no epoch finished"  # a row's unmeasured states
TABLE_START = "| row | book |"  # how the table begins, in this and in older layouts
HEADER = (f"{TABLE_START} ours: mean ± std | best seed | best - book (pp) | seeds | epochs | "
          "train time |")
COLUMNS = HEADER.count("|") - 1


def _table_span(lines: list[str]) -> tuple[int, int] | None:
    """[start, end) of the row table (TABLE_START up to the first non-table line), if any."""
    start = next((i for i, line in enumerate(lines) if line.startswith(TABLE_START)), None)
    if start is None:
        return None
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return start, end


def replace_table(document: str, new_table: str) -> str:
    """`document` with its row table replaced (or `new_table` alone when it has none)."""
    lines = document.splitlines(keepends=True)
    span = _table_span(lines)
    if span is None:
        return new_table
    return "".join(lines[: span[0]]) + new_table + "".join(lines[span[1] :])


def published_rows(document: str) -> dict[str, str]:
    """Row label -> its line, for the measured rows of the table in `document` that have this
    table's columns (header, separator, unmeasured rows and older layouts left out)."""
    lines = document.splitlines()
    span = _table_span(lines)
    rows = lines[span[0] + 2 : span[1]] if span else []
    return {line.split("|")[1].strip(): line for line in rows
            if line.count("|") == COLUMNS + 1 and NOT_RUN not in line and NO_EPOCH not in line}


def mean_std(accs: np.ndarray) -> str:
    """'99.05% ± 0.04' over the seeds (sample std); one seed has no spread: '99.40% (1 seed)'."""
    if len(accs) == 1:
        return f"{accs[0]:.2f}% (1 seed)"
    return f"{accs.mean():.2f}% ± {accs.std(ddof=1):.2f}"


def _vote_cells(r: dict, book: float) -> tuple[str, str]:
    """Row 9's 'ours' and 'best - book' cells: the vote and its errors when the run finished."""
    nets = f"nets {mean_std(np.array(r['accs']))}"
    if r["vote"] is None:
        return f"{nets}; vote when finished", ""
    errors = round((1 - r["vote"]) * TEST_IMAGES)
    return (f"vote {100 * r['vote']:.2f}% ({errors} errors; book {BOOK_ROW9_ERRORS}); {nets}",
            f"{100 * r['vote'] - book:+.2f} (vote)")


def _line(label: str, book: float, r: dict, borrowed: str | None) -> str:
    accs = np.array(r["accs"])
    diverged = f" ({r['diverged']} diverged, left out)" if r["diverged"] else ""
    if not len(accs):
        return f"| {label} | {book:.2f}% | every seed diverged | | | {r['diverged']} | | |"
    if label == "row9":
        ours, gap = _vote_cells(r, book)
    else:
        ours, gap = mean_std(accs), f"{accs.max() - book:+.2f}"
    state = "" if r["finished"] else " (training)" if r["training"] else " (stopped)"
    epochs = f"{r['epochs']}/{r['planned']}{state}"
    seeds = f"{len(accs)}" + (f" (seeds {r['seeds'][0]}-{r['seeds'][-1]} of {borrowed})"
                              if borrowed else "") + diverged
    time = f"in {borrowed}" if borrowed else f"{r['seconds'] / 60:.0f} min"
    return (f"| {label} | {book:.2f}% | {ours} | {accs.max():.2f}% | {gap} | {seeds} | {epochs} | "
            f"{time} |")


def table(runs_dir: Path, published: dict[str, str] | None = None) -> str:
    """The Markdown table: book vs ours (mean ± std, best), seeds, epochs, wall time; a row
    with no run dir under `runs_dir` takes its line from `published` when that has one."""
    lines = [HEADER, "|" + "---|" * COLUMNS]
    for label, name, widths, book in ROWS:
        run_dir, max_seeds, borrowed = row_dir(runs_dir, name, widths), None, None
        if name == "row8" and run_dir is None and (run_dir := row_dir(runs_dir, "row9", None)):
            max_seeds, borrowed = ROW8_SEEDS_IN_ROW9, "row9's run"
        if run_dir is None and label in (published or {}):
            lines.append(published[label])
            continue
        r = row_result(run_dir, max_seeds) if run_dir is not None else None
        if r is None:
            state = NOT_RUN if run_dir is None else NO_EPOCH
            lines.append(f"| {label} | {book:.2f}% | {state} |" + " |" * (COLUMNS - 3))
            continue
        lines.append(_line(label, book, r, borrowed))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not args.runs_dir.is_dir():
        print(f"error: runs_dir {args.runs_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        old = args.out.read_text() if args.out and args.out.exists() else ""
        text = table(args.runs_dir, published_rows(old))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a run dir's unreadable record
        print(f"error: {args.runs_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_atomic(args.out, replace_table(old, text))
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
