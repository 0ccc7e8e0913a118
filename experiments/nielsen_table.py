"""python -m experiments.nielsen_table RUNS_DIR [--out FILE]: Nielsen's ch.6 table from row runs.

RUNS_DIR holds one run dir per row (row1, row2, ...), each made by `python -m experiments.train
experiment=nielsen/rowN hydra.run.dir=RUNS_DIR/rowN`, or a sweep there whose jobs' nets make the
row together (`-m ... seed=0,1,2,3,4 train.seeds=1`: one net per job); rows 6 and 7 are sweeps
over `width` (`-m ... width=300,1000 hydra.sweep.dir=RUNS_DIR/row6`), one line per width. Row 8
is its first 3 seeds; without a row8 dir, the first 3 of row 9's run. Row 9 is the plurality
vote of 5 row-8 nets: row 9's run, or without one, row 8's first 5 nets, the vote recomputed
from their test_errors.json (`train.test_errors`, set by experiment nielsen/row8) once every one
has finished. A run stopped early is read from its metrics.jsonl: the best-validation protocol
over the epochs it finished. A line of several runs' nets of which some have finished (row 8's
one-net jobs) is the finished nets', with each other net's epochs and state in its seeds cell,
so that a net in its first epochs does not blur the others. Each line ends with its seeds'
best-validation epochs and the mean slope of their validation accuracy over the last quarter of
the epochs, with its 95% interval (`tables.slope_stats`): whether the budget was enough.
`--out FILE` replaces the table inside FILE when it already holds one (the prose around it is kept),
and writes the table alone otherwise; a row with no run dir under RUNS_DIR keeps its measured line
from FILE, so a runs dir holding only some rows updates those rows. `--readme README.md` also
rewrites the README's results table (between README_BEGIN and README_END) from the table just made:
one line per book row.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from cnn_jax.atomic import write_atomic
from cnn_jax.protocol import last_epochs_val_slope, per_seed_summary, seeds_of
from cnn_jax.results import records, rundir
from cnn_jax.results.tables import natural_key, signed, slope_stats, slope_text
from cnn_jax.train.ensemble import vote_errors

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
ROW8_SEEDS = 3  # row 8: its first 3 nets (of row 9's run when it has none of its own)
ROW9_NETS = 5  # row 9: the vote of 5 row-8 nets (row 8's first 5 when it has no run of its own)
BORROWS = {"row8": "row9", "row9": "row8"}  # a row without runs of its own reads the other's nets


def row_runs(runs_dir: Path, name: str, widths: tuple[int, ...] | None) -> list[Path]:
    """The run dirs of a line: RUNS_DIR/name, or the jobs of a sweep there (those with these FC
    widths when given), in job order; none when there is no run."""
    top = runs_dir / name
    if (top / records.CONFIG).is_file():
        dirs = [top]
    else:
        dirs = sorted((c.parent for c in top.glob(f"**/{records.CONFIG}")),
                      key=lambda d: natural_key(d.relative_to(top)))
    if widths is None:
        return dirs
    return [d for d in dirs if tuple(layer["units"] for layer in json.loads(
        (d / records.CONFIG).read_text())["model"]["dense"]) == widths]


def row_result(run_dirs: list[Path], max_seeds: int | None = None,
               vote_nets: int | None = None) -> dict | None:
    """Per-seed best-val test accuracies, epochs done (the fewest of the runs) and planned, wall
    seconds of a line's runs, over their first `max_seeds` nets by seed when given; with
    `vote_nets`, the vote of the first that many nets: the run's own vote_test_acc, or from the
    nets' test_errors.json once every run has finished (None before, or with fewer nets)."""
    nets, used = [], {}  # (seed, summary, run dir) of every net; each run's history and config
    for run_dir in run_dirs:
        history = records.read_epochs(run_dir)
        if history:
            config = json.loads((run_dir / records.CONFIG).read_text())
            used[run_dir] = history, config
            seeds = seeds_of(config)
            nets += [(seed, s, run_dir) for seed, s in zip(seeds, per_seed_summary(history, seeds),
                                                           strict=True)]
    chosen = sorted(nets, key=lambda n: n[0])[: max_seeds or vote_nets]
    if not chosen:
        return None
    used = {d: used[d] for d in dict.fromkeys(d for _, _, d in chosen)}
    metrics = {d: records.read_metrics(d) or {} for d in used}
    chosen, pending = _finished_nets(chosen, used, metrics)
    used = {d: used[d] for d in dict.fromkeys(d for _, _, d in chosen)}
    metrics = {d: metrics[d] for d in used}
    finished = all(m.get("status") in records.FINISHED for m in metrics.values())
    ok = [(seed, s, d) for seed, s, d in chosen if s["status"] == "ok"]
    accs = [100 * s["test_acc"] for _, s, _ in ok]  # as the tables do
    slopes = {d: dict(zip(seeds_of(c), last_epochs_val_slope(h, len(seeds_of(c))), strict=True))
              for d, (h, c) in used.items()}
    whole = len(chosen) == sum(len(seeds_of(c)) for _, c in used.values())  # every net of its runs
    vote = (_vote(chosen, used, metrics, whole)
            if vote_nets and finished and len(chosen) == vote_nets else None)
    return {"accs": accs, "diverged": len(chosen) - len(accs),
            "epochs": min(len(h) for h, _ in used.values()),
            "planned": max(c["train"]["epochs"] for _, c in used.values()),
            "seconds": sum(h_["seconds"] for h, _ in used.values() for h_ in h), "whole": whole,
            "finished": finished, "training": any(rundir.holder(d) for d in used),
            "vote": vote, "seeds": [seed for seed, _, _ in chosen], "pending": pending,
            "best_epochs": [s["best_val_epoch"] for _, s, _ in ok],
            "slope": slope_stats(slopes[d][seed] for seed, _, d in ok),
            "wanted": max_seeds or vote_nets}


def _finished_nets(chosen: list[tuple], used: dict[Path, tuple],
                   metrics: dict[Path, dict]) -> tuple[list[tuple], list[str]]:
    """A line of the nets of several runs (row 8's one-net jobs) of which some have finished is
    the finished nets', so that one net still in its first epochs does not blur the others: the
    chosen nets of finished runs, and 'seed S: E/P training' (or stopped) for each other net.
    Every chosen net, and none pending, when they come from one run or none has finished."""
    done = {d for d, m in metrics.items() if m.get("status") in records.FINISHED}
    if len(used) == 1 or not done or len(done) == len(used):
        return chosen, []
    pending = [f"seed {seed}: {len(used[d][0])}/{used[d][1]['train']['epochs']} "
               + ("training" if rundir.holder(d) else "stopped")
               for seed, _, d in chosen if d not in done]
    return [n for n in chosen if n[2] in done], pending


def _vote(chosen: list[tuple], used: dict[Path, tuple], metrics: dict[Path, dict],
          whole: bool) -> float | None:
    """Test accuracy of the plurality vote of the chosen finished nets: a run's own
    vote_test_acc when they are all of its nets, else recomputed from each net's errors in its
    run's test_errors.json (None when one has none)."""
    if len(used) == 1 and whole and "vote_test_acc" in (only := next(iter(metrics.values()))):
        return only["vote_test_acc"]
    saved = {d: records.read_test_errors(d) for d in used}
    if not all(saved.values()) or any(seed not in saved[d]["seeds"] for seed, _, d in chosen):
        return None
    errors = [saved[d]["errors"][saved[d]["seeds"].index(seed)] for seed, _, d in chosen]
    num_classes = next(iter(used.values()))[1]["model"]["num_classes"]
    return 1 - len(vote_errors(errors, num_classes)) / next(iter(saved.values()))["images"]


def seeds_span(seeds: list[int]) -> str:
    """'0-2' for consecutive seeds, '0, 1, 3' otherwise."""
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
    return ", ".join(map(str, seeds))


NOT_RUN, NO_EPOCH = "not yet run", "started, no epoch finished"  # a row's unmeasured states
TABLE_START = "| row | book |"  # how the table begins, in this and in older layouts
HEADER = (f"{TABLE_START} ours: mean ± std | best seed | best - book (pp) | seeds | epochs | "
          "train time | best-val epochs | val slope, last ¼ (pp / epoch) |")
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
            f"{signed(100 * r['vote'] - book)} (vote)")


def _line(label: str, book: float, r: dict, borrowed: str | None) -> str:
    accs = np.array(r["accs"])
    diverged = f" ({r['diverged']} diverged, left out)" if r["diverged"] else ""
    if not len(accs):
        return (f"| {label} | {book:.2f}% | every seed diverged | | | {r['diverged']} |"
                + " |" * (COLUMNS - 6))
    if label == "row9":
        ours, gap = _vote_cells(r, book)
    else:
        ours, gap = mean_std(accs), signed(accs.max() - book)
    state = "" if r["finished"] else " (training)" if r["training"] else " (stopped)"
    epochs = f"{r['epochs']}/{r['planned']}{state}"
    seeds = r["seeds"]
    which = (f"seeds {seeds_span(seeds)} of {borrowed}" if borrowed else
             "" if seeds == list(range(len(seeds))) else f"seeds {seeds_span(seeds)}")
    notes = "; ".join(filter(None, [which, ", ".join(r["pending"])]))
    of = f" of {r['wanted']}" if r["wanted"] and len(seeds) < r["wanted"] else ""
    seeds = f"{len(accs)}{of}{f' ({notes})' if notes else ''}{diverged}"
    # a line of some of its runs' nets (row 8 of row 9's run) has no time of its own
    time = f"in {borrowed}" if borrowed and not r["whole"] else f"{r['seconds'] / 60:.0f} min"
    best_epochs = ", ".join(str(e) for e in r["best_epochs"])
    slope = slope_text(r["slope"])
    return (f"| {label} | {book:.2f}% | {ours} | {accs.max():.2f}% | {gap} | {seeds} | {epochs} | "
            f"{time} | {best_epochs} | {slope} |")


def table(runs_dir: Path, published: dict[str, str] | None = None) -> str:
    """The Markdown table: book vs ours (mean ± std, best), seeds, epochs, wall time; a row
    with no run dir under `runs_dir` takes its line from `published` when that has one."""
    lines = [HEADER, "|" + "---|" * COLUMNS]
    for label, name, widths, book in ROWS:
        run_dirs, borrowed = row_runs(runs_dir, name, widths), None
        if not run_dirs and name in BORROWS and (run_dirs := row_runs(runs_dir, BORROWS[name],
                                                                       None)):
            borrowed = f"{BORROWS[name]}'s " + ("run" if len(run_dirs) == 1 else "runs")
        if not run_dirs and label in (published or {}):
            lines.append(published[label])
            continue
        r = row_result(run_dirs, ROW8_SEEDS if name == "row8" else None,
                       ROW9_NETS if name == "row9" else None)
        if r is None:
            state = NO_EPOCH if run_dirs else NOT_RUN
            lines.append(f"| {label} | {book:.2f}% | {state} |" + " |" * (COLUMNS - 3))
            continue
        lines.append(_line(label, book, r, borrowed))
    return "\n".join(lines) + "\n"


README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
README_HEADER = ("| row | network (MNIST, plain SGD, minibatch 10) | book | ours: best seed | "
                 "ours: mean ± std |\n|---|---|---|---|---|\n")
NETWORKS = {1: "FC100, sigmoid", 2: "conv 20@5x5 + max-pool + FC100, sigmoid",
            3: "+ conv 40@5x5 + max-pool, sigmoid", 4: "row 3 with ReLU and L2",
            5: "row 4 on the 250k expanded images", 6: "row 5 with FC300 / FC1000",
            7: "two FC layers, 100 / 300 / 1000 wide", 8: "two FC1000, dropout 0.5",
            9: "plurality vote of 5 row-8 nets"}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _readme_row(number: int, lines: list[list[str]]) -> str:
    """One book row of the README's table from its lines of the Nielsen table (cells: label,
    book, ours, best, gap, seeds, epochs, time)."""
    book = " / ".join(c[1] for c in lines)
    if any(len(c) < COLUMNS or not c[3] for c in lines):  # no best seed: not run, diverged...
        return f"| {number} | {NETWORKS[number]} | {book} | {lines[0][2]} | |"
    if number == 9:
        vote = re.match(r"vote (\S+) \((\d+) errors", lines[0][2])
        nets = lines[0][2].split("nets ", 1)[-1]
        count = lines[0][5].split(" ", 1)[0]
        best = f"{vote[1]} ({vote[2]} errors)" if vote else lines[0][2]
        return (f"| 9 | {NETWORKS[9]} | {book} ({BOOK_ROW9_ERRORS} errors) | {best} | "
                f"the {count} nets {nets} |")
    if len(lines) == 1:
        return f"| {number} | {NETWORKS[number]} | {book} | {lines[0][3]} | {lines[0][2]} |"
    seeds, epochs = {c[5] for c in lines}, {c[6] for c in lines}
    each = (f" ({min(seeds)} seed{'' if seeds == {'1'} else 's'} each, {min(epochs)} epochs)"
            if len(seeds) == len(epochs) == 1 else "")
    best = ", ".join(f"{c[0].split(' ', 1)[1]} {c[3]}" for c in lines)
    return f"| {number} | {NETWORKS[number]} | {book} | {best}{each} | |"


def readme_table(nielsen_table: str) -> str:
    """The README's results table (row, network, book, best seed, mean ± std) from the lines
    of `table`'s Markdown: rows 6 and 7 in one line each, row 9 as the vote and its nets."""
    rows: dict[int, list[list[str]]] = {}
    for line in nielsen_table.splitlines()[2:]:
        cells = _cells(line)
        rows.setdefault(int(cells[0].split()[0].removeprefix("row")), []).append(cells)
    return README_HEADER + "\n".join(_readme_row(n, rows[n]) for n in sorted(rows)) + "\n"


def replace_readme_block(document: str, block: str, where: str = "README") -> str:
    """`document` with the text between README_BEGIN and README_END replaced by `block`;
    ValueError when it lacks the two markers in that order."""
    start, end = document.find(README_BEGIN), document.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{where}: no {README_BEGIN} ... {README_END} block to write the "
                         "results table into")
    start += len(README_BEGIN)
    return document[:start] + "\n" + block + document[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--readme", type=Path,
                        help=f"also rewrite this file's {README_BEGIN} block (README.md)")
    args = parser.parse_args(argv)
    if not args.runs_dir.is_dir():
        print(f"error: runs_dir {args.runs_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        old = args.out.read_text() if args.out and args.out.exists() else ""
        text = table(args.runs_dir, published_rows(old))
        readme = args.readme and replace_readme_block(args.readme.read_text(),
                                                      readme_table(text), str(args.readme))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a run dir's unreadable record
        print(f"error: {args.runs_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_atomic(args.out, replace_table(old, text))
    if readme:
        write_atomic(args.readme, readme)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
