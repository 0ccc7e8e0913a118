"""Sweep dir -> one row per (job, seed) -> one row per group -> Markdown / CSV / LaTeX tables.

A group is a job's overrides minus the seed ones; its statistics (percent) are over the seeds that
finished ok. Diverged, failed and unfinished runs (no metrics.json yet: training, stopped, not
started, as `rundir.state_of` reads them) are listed with their error or state, never dropped.
Two columns say
whether a budget was enough: the mean best-validation epoch of the epochs run, and the mean change
of validation accuracy over the last epoch (still rising: positive).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cnn_jax.protocol import last_epoch_val_change, seeds_of
from cnn_jax.results.records import METRICS, RUNTIME_KEYS, read_epochs, read_metrics
from cnn_jax.results.rundir import epochs_recorded, saved_config, state_of
from cnn_jax.results.significance import (
    BEST,
    SIG_COLUMNS,
    is_tied_with_best,
    t_quantile_975,
    versus_best,
)

SEED_KEYS = frozenset({"seed", "train.seed", "train.seeds"})
# overrides that control how a run goes, not what it trains: never part of a configuration's label.
# The config keys that are no part of a run's identity (records.RUNTIME_KEYS), plus what only the
# tables see in overrides: the logger group (logger=csv) and Hydra's own settings. An override's
# key matches one of these when it is that key or lies under it (logger.wandb.project=x).
RUN_CONTROL_KEYS = frozenset({*RUNTIME_KEYS, "logger", "hydra"})
ACC_FIELDS = ("test_acc", "val_acc", "last_test_acc", "best_val_epoch", "final_train_loss")
RUN_COLUMNS = ("job", "group", "seed", "seeds_planned", "status", *ACC_FIELDS, "epochs",
               "val_gain_last", "params", "flops_per_image", "seconds", "seconds_per_seed", "error")
STAT_COLUMNS = ("test_mean", "test_std", "test_ci95", "test_lo", "test_hi", "test_min", "test_max")
SUMMARY_COLUMNS = ("group", "n", "n_runs", *STAT_COLUMNS, "last_test_mean", "best_val_epoch_mean",
                   "epochs", "val_gain_last_mean", "params", "flops_per_image", "seconds_per_seed",
                   "failed_seeds", "diverged_seeds", "unfinished_seeds", "pruned_seeds",
                   *SIG_COLUMNS)
# the statuses of a (job, seed) listed as not ok (pruned: stopped early by a search's pruner)
NOT_OK = ("diverged", "failed", "unfinished", "pruned")
TIED = " †"  # marks a mean not separated from the best at 5%
_RESERVED = frozenset(RUN_COLUMNS + SUMMARY_COLUMNS)  # an override key by one of these names...
_LATEX_SPECIAL = {c: "\\" + c for c in "_&%$#{}"} | {
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
# a cell that is one number (1,171,500 | -0.09 | 99.04) or one out of a total (5/5 | 7.4/8)
_NUMBER = re.compile(r"[+\-−]?\d[\d,]*(\.\d+)?|\d+(\.\d+)?/\d+")


def mean_ci(values: Iterable[float]) -> dict[str, float]:
    """Mean, std (ddof=1, 0 for one value), 95% t half-width and interval, min and max."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return dict.fromkeys(STAT_COLUMNS, math.nan)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return {"test_mean": mean, "test_std": std, "test_ci95": half, "test_lo": mean - half,
            "test_hi": mean + half, "test_min": min(xs), "test_max": max(xs)}


def parse_override(text: str) -> tuple[str, str]:
    """('pooling', 'l2') from 'pooling=l2'; a leading +, ++ or ~ is dropped from the key."""
    key, _, value = str(text).partition("=")
    return key.strip().lstrip("+~"), value.strip()


def is_group_override(text: str) -> bool:
    """False for the seed and run-control overrides (RUN_CONTROL_KEYS and the keys under them):
    they do not define a configuration."""
    key, _ = parse_override(text)
    return key not in SEED_KEYS and not any(key == k or key.startswith(k + ".")
                                            for k in RUN_CONTROL_KEYS)


def group_label(overrides: Iterable[str]) -> str:
    """The overrides that define a configuration, sorted and joined; 'default' when none."""
    return ", ".join(sorted(o for o in overrides if is_group_override(o))) or "default"


def natural_key(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.as_posix())]


def find_job_dirs(sweep_dir: str | os.PathLike) -> list[Path]:
    """Job dirs of a sweep (with .hydra/overrides.yaml or metrics.json), in numeric order."""
    jobs = []
    for root, dirs, files in os.walk(sweep_dir):
        here = Path(root)
        if METRICS in files or (here / ".hydra" / "overrides.yaml").is_file():
            jobs.append(here)
            dirs.clear()
        else:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(jobs, key=lambda p: natural_key(p.relative_to(sweep_dir)))


def _read_overrides(job_dir: Path, metrics: dict[str, Any] | None) -> list[str]:
    """The overrides of the run whose results job_dir holds: its metrics.json's (Hydra rewrites
    .hydra/overrides.yaml at every launch, even of a job then refused for holding another
    config's run), else .hydra's for a job without a record yet."""
    if metrics and metrics.get("overrides") is not None:
        return [str(o) for o in metrics["overrides"]]
    path = job_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        return [str(o) for o in yaml.safe_load(path.read_text()) or []]
    return []


def _seed_override(overrides: list[str]) -> int | None:
    seeds = [v for k, v in map(parse_override, overrides) if k in ("seed", "train.seed")]
    return int(seeds[0]) if seeds and seeds[0].lstrip("-").isdigit() else None


def last_epoch_val_gains(job_dir: Path, n_seeds: int) -> list[float | None]:
    """Per seed (in per_seed's order), the change of validation accuracy over the last epoch of
    the job's metrics.jsonl (`protocol.last_epoch_val_change`; None where there is none)."""
    try:
        history = read_epochs(job_dir)
    except (OSError, ValueError):
        history = []
    return last_epoch_val_change(history, n_seeds)


def unfinished_state(job_dir: Path) -> str:
    """Where a job without a metrics.json stands: training (by whom), stopped after E of N
    epochs, or no record yet."""
    state = state_of(job_dir)
    if state.state == "training":
        return f"training ({state.detail}), {state.epochs_done}/{state.epochs_planned} epochs"
    done = epochs_recorded(job_dir)
    if done:
        rerun = "resumable" if state.state == "stopped" else "a rerun starts over"
        return f"stopped after {done} of {state.epochs_planned} epochs ({rerun})"
    return "no epoch recorded yet: not started, in its first epoch, or killed before it"


def _planned_seeds(job_dir: Path) -> list[int] | None:
    """The seeds an unfinished job trains, from the config.json it wrote (None: none yet)."""
    config = saved_config(job_dir) or {}
    if "seed" not in config or "seeds" not in config.get("train", {}):
        return None
    return seeds_of(config)


def _job_rows(job_dir: Path, name: str) -> list[dict[str, Any]]:
    try:
        metrics, problem = read_metrics(job_dir), "no metrics.json"
    except (OSError, ValueError) as exc:
        metrics, problem = None, f"unreadable metrics.json: {exc}"
    overrides = _read_overrides(job_dir, metrics)
    kept = [parse_override(o) for o in overrides if is_group_override(o)]
    base = {"job": name, "group": group_label(overrides)}
    base |= {(f"{k} (override)" if k in _RESERVED else k): v for k, v in kept}  # ...is renamed
    if metrics is None:  # one row for the job, standing for the seeds it trains (1 if unknown)
        unfinished = problem == "no metrics.json"
        seeds = _planned_seeds(job_dir) if unfinished else None
        seeds = seeds or [_seed_override(overrides)]
        return [{**base, "seed": seeds[0] if len(seeds) == 1 else None,
                 "seeds_planned": len(seeds), "status": "unfinished" if unfinished else "failed",
                 "error": unfinished_state(job_dir) if unfinished else problem}]
    per_seed = metrics.get("per_seed") or []
    secs = metrics.get("seconds")
    base |= {"params": metrics.get("params"), "flops_per_image": metrics.get("flops_per_image"),
             "seconds": secs, "seconds_per_seed": secs / max(len(per_seed), 1) if secs else None}
    if not per_seed:
        status = metrics.get("status") or "failed"
        return [{**base, "seed": _seed_override(overrides), "status": status,
                 "error": metrics.get("error") or (None if status == "ok" else "no per_seed")}]
    rows = []
    gains = last_epoch_val_gains(job_dir, len(per_seed))
    for entry, gain in zip(per_seed, gains, strict=True):
        status = entry.get("status") or metrics.get("status") or "failed"
        error = None if status == "ok" else entry.get("error") or metrics.get("error") or status
        rows.append({**base, "seed": entry.get("seed"), "status": status,
                     **{k: entry.get(k) for k in ACC_FIELDS}, "epochs": metrics.get("epochs"),
                     "val_gain_last": gain, "error": error})
    return rows


def collect_runs(sweep_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per (job, seed) of a Hydra sweep; empty when it holds no job dirs."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: not a directory")
    rows = [r for job in find_job_dirs(sweep_dir)
            for r in _job_rows(job, job.relative_to(sweep_dir).as_posix())]
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in _RESERVED))
    runs = pd.DataFrame(rows, columns=[*RUN_COLUMNS[:2], *keys, *RUN_COLUMNS[2:]])
    # the swept keys first, then the constant ones, each in the order first met (the sweep's):
    # the columns do not depend on the order in which a job's launcher listed its overrides
    swept = varying_keys(runs)
    keys = swept + [k for k in keys if k not in swept]
    runs = runs[[*RUN_COLUMNS[:2], *keys, *RUN_COLUMNS[2:]]]
    runs["seeds_planned"] = runs["seeds_planned"].fillna(1)  # a row of its own seed
    for col in ("seed", "seeds_planned", "best_val_epoch", "epochs", "params", "flops_per_image"):
        runs[col] = pd.to_numeric(runs[col]).round().astype("Int64")
    return runs


def override_keys(frame: pd.DataFrame) -> list[str]:
    """The override-key columns of a runs or summary frame, in sweep order."""
    return [c for c in frame.columns if c not in _RESERVED]


def _seed_list(group: pd.DataFrame, status: str) -> list[str]:
    bad = group[group["status"] == status]
    pairs = zip(bad["job"], bad["seed"], strict=True)
    return [f"job {j}" if pd.isna(s) else str(s) for j, s in pairs]


def _first(series: pd.Series) -> Any:
    return next(iter(series.dropna()), None)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per group, in sweep order; accuracies in percent over the seeds that finished ok."""
    rows = []
    for group, g in runs.groupby("group", sort=False):
        ok = g[(g["status"] == "ok") & g["test_acc"].notna()]
        rows.append({"group": group, **{k: _first(g[k]) for k in override_keys(runs)},
                     "n": len(ok), "n_runs": int(g["seeds_planned"].sum()),
                     **mean_ci(ok["test_acc"].astype(float) * 100),
                     "last_test_mean": ok["last_test_acc"].astype(float).mean() * 100,
                     "best_val_epoch_mean": ok["best_val_epoch"].astype(float).mean(),
                     "epochs": ok["epochs"].max() if len(ok) else None,
                     "val_gain_last_mean": ok["val_gain_last"].astype(float).mean() * 100,
                     "params": _first(g["params"]), "flops_per_image": _first(g["flops_per_image"]),
                     "seconds_per_seed": g["seconds_per_seed"].astype(float).mean(),
                     **{f"{status}_seeds": _seed_list(g, status) for status in NOT_OK}})
    columns = ["group", *override_keys(runs), *SUMMARY_COLUMNS[1:-len(SIG_COLUMNS)]]
    summary = pd.DataFrame(rows, columns=columns)
    ints = {"epochs": "Int64", "params": "Int64", "flops_per_image": "Int64"}
    return versus_best(summary.astype(ints))


def varying_keys(summary: pd.DataFrame) -> list[str]:
    """Override keys whose value differs between rows (the groups of a summary, the runs of a
    runs frame)."""
    return [k for k in override_keys(summary) if summary[k].nunique(dropna=False) > 1]


def common_overrides(summary: pd.DataFrame) -> str:
    """The overrides shared by every group, as 'key=value, ...' (empty when none)."""
    varying = set(varying_keys(summary))
    return ", ".join(f"{k}={summary[k].iloc[0]}" for k in override_keys(summary)
                     if k not in varying and not pd.isna(summary[k].iloc[0]))


def grid_keys(summary: pd.DataFrame) -> tuple[str, str] | None:
    """(row key, column key) when the groups form a 2-D grid of two override keys, else None."""
    keys = varying_keys(summary)
    if len(keys) != 2 or summary[keys].fillna("").duplicated().any():
        return None
    return keys[0], keys[1]


def _num(x: Any, fmt: str = ".2f") -> str:
    return "—" if x is None or pd.isna(x) else format(x, fmt)


def signed(x: float, digits: int = 2) -> str:
    """`x` with its sign, to `digits` decimals; what rounds to zero reads +0.00, never -0.00."""
    return f"{round(float(x), digits) + 0.0:+.{digits}f}"


def _signed_cell(x: Any) -> str:
    return "—" if x is None or pd.isna(x) else signed(x)


def _is_best(row: pd.Series) -> bool:
    """The best cell as significance.versus_best chose it (the one definition of the best)."""
    return row["vs_best"] == BEST


def _mean_cell(row: pd.Series, pm: str, tied: str = "") -> str:
    """'mean ± std', followed by `tied` when the cell is not separated from the best."""
    if row["n"] == 0:
        return "—"
    mark = tied if not _is_best(row) and is_tied_with_best(row["vs_best"]) else ""
    return f"{row['test_mean']:.2f} {pm} {row['test_std']:.2f}{mark}"


def _vs_best_cell(row: pd.Series) -> str:
    """'Δ [95% CI], p' against the best cell, or why there is no test."""
    delta, half = row["delta_vs_best"], row["delta_ci95"]
    if _is_best(row) or pd.isna(delta):
        return str(row["vs_best"])
    if pd.isna(half):
        return f"{signed(delta)} ({row['vs_best']})"
    return (f"{signed(delta)} [{signed(delta - half)}, {signed(delta + half)}], "
            f"p={row['p_holm']:.2g} ({row['vs_best']})")


def _ci_cell(row: pd.Series) -> str:
    return "—" if row["n"] < 2 else f"[{row['test_lo']:.2f}, {row['test_hi']:.2f}]"


def _epochs_cell(row: pd.Series) -> str:
    """'7.4/8': the mean best-validation epoch of the ok seeds, of the epochs run."""
    if pd.isna(row["best_val_epoch_mean"]):
        return "—"
    total = "" if pd.isna(row["epochs"]) else f"/{row['epochs']}"
    return f"{row['best_val_epoch_mean']:.1f}{total}"


def _not_ok_cell(row: pd.Series) -> str:
    named = {s: [i if i.startswith("job") else f"seed {i}" for i in row[f"{s}_seeds"]]
             for s in NOT_OK}
    parts = [f"{s}: {', '.join(items)}" for s, items in named.items() if items]
    return "; ".join(parts) or "—"


def display_frame(summary: pd.DataFrame, bold: Callable[[str], str] = lambda s: s,
                  pm: str = "±", tied: str = TIED,
                  escape: Callable[[str], str] = lambda s: s) -> pd.DataFrame:
    """The summary as strings: one column per quantity, the best cell's mean (versus_best's
    choice) wrapped by `bold`, the means not separated from the best followed by `tied`.

    The configuration column names only the overrides that vary between groups. `escape` is
    applied to every text cell that can hold user strings (configuration, vs best, not ok), before
    any markup is added; the other cells hold only numbers and `bold`, `pm` and `tied`.
    """
    keys = varying_keys(summary)
    label = lambda r: ", ".join(f"{k}={r[k]}" for k in keys) if keys else r["group"]
    cells = [{"configuration": escape(label(r)), "seeds ok": f"{r['n']}/{r['n_runs']}",
              "test acc % (mean ± std)": bold(_mean_cell(r, pm)) if _is_best(r)
              else _mean_cell(r, pm, tied), "95% CI": _ci_cell(r),
              "vs best: Δ pp [95% CI], Holm p": escape(_vs_best_cell(r)),
              "min – max": f"{_num(r['test_min'])} – {_num(r['test_max'])}",
              "last-epoch test %": _num(r["last_test_mean"]),
              "best-val epoch": _epochs_cell(r), "val Δ last epoch pp": _signed_cell(
                  r["val_gain_last_mean"]), "params": _num(r["params"], ",.0f"),
              "FLOPs / image": _num(r["flops_per_image"], ",.0f"),
              "s / seed": _num(r["seconds_per_seed"], ".1f"), "not ok": escape(_not_ok_cell(r))}
             for _, r in summary.iterrows()]
    return pd.DataFrame(cells).astype(str)


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    """The (job, seed) rows not ok (diverged, failed, unfinished) with their error or state."""
    bad = runs[runs["status"] != "ok"]
    cells = bad[["job", "group", "seed", "status", "error"]].astype(object)
    return cells.where(cells.notna(), "—").astype(str)


def _md(frame: pd.DataFrame) -> str:
    cells = frame.map(lambda c: str(c).replace("|", r"\|")).rename(columns=str)
    return cells.to_markdown(index=False, disable_numparse=True)


def pivot_markdown(summary: pd.DataFrame, keys: tuple[str, str]) -> str:
    """Markdown grid: rows = first key's values, columns = second key's; cell = mean ± std [CI]."""
    rk, ck = keys
    grid = summary.assign(**{k: summary[k].fillna("(default)") for k in keys})
    table = pd.DataFrame(index=list(dict.fromkeys(grid[rk])),
                         columns=list(dict.fromkeys(grid[ck])), data="—")
    for _, r in grid.iterrows():
        cell = _mean_cell(r, "±", TIED) + ("" if r["n"] < 2 else " " + _ci_cell(r))
        table.loc[r[rk], r[ck]] = f"**{cell}**" if _is_best(r) else cell
    return _md(table.rename_axis(f"{rk} \\ {ck}").reset_index())


def to_markdown(summary: pd.DataFrame, runs: pd.DataFrame | None = None,
                title: str | None = None) -> str:
    """Markdown table, the 2-D pivot when groups form a grid, the failures (given the runs)."""
    parts = [f"## {title}"] if title else []
    parts += [_md(display_frame(summary, lambda s: f"**{s}**")),
              "Test accuracy (%) at the best-validation epoch over the seeds that finished ok; "
              "95% CI = mean ± t(0.975, n−1)·std/√n; bold = the best cell: the highest mean "
              "among the cells with at least 2 ok seeds (with 1 when none has 2). "
              "vs best: difference to the best mean with its 95% Welch interval, and the "
              "two-sided Welch t-test's p-value, Holm-corrected over the cells; "
              f"{TIED.strip()} = not separated from the best at 5%. Cells with one seed are not "
              "tested. best-val epoch: the mean epoch of best validation accuracy, of the epochs "
              "run; val Δ last epoch: the mean change of validation accuracy over the last epoch "
              "(positive: still rising when the budget ended)."]
    common = common_overrides(summary)
    if common:
        parts.append(f"Common to every configuration: {common}.")
    if (keys := grid_keys(summary)) is not None:
        parts += [f"### {keys[0]} × {keys[1]}", pivot_markdown(summary, keys)]
    if runs is not None:
        bad = failures(runs)
        parts += ["### Diverged, failed and unfinished runs",
                  _md(bad) if len(bad) else f"None: all {len(runs)} runs finished ok."]
    return "\n\n".join(parts) + "\n"


def to_csv(summary: pd.DataFrame) -> str:
    """CSV of the summary: numbers unformatted (accuracies in percent), seed lists joined by ';'."""
    out = summary.copy()
    for col in (f"{status}_seeds" for status in NOT_OK):
        out[col] = out[col].map(";".join)
    return out.to_csv(index=False, float_format="%.4f")


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (_ & % $ # { } ~ ^ \\)."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def column_spec(frame: pd.DataFrame) -> str:
    """A tabular column specifier, one letter per column of `frame`: r for a column of numbers
    (every cell a number, one out of a total like 5/5, or —, and not all —), l for text."""
    def align(cells: pd.Series) -> str:
        cells = cells.astype(str).str.strip()
        numbers = cells.map(lambda c: _NUMBER.fullmatch(c) is not None)
        return "r" if numbers.any() and (numbers | (cells == "—")).all() else "l"
    return "".join(align(frame.iloc[:, i]) for i in range(frame.shape[1]))


def _tabular(frame: pd.DataFrame) -> list[str]:
    head = " & ".join(latex_escape(c).replace("±", r"$\pm$").replace("Δ", r"$\Delta$")
                       for c in frame.columns) + r" \\"
    body = [" & ".join(map(str, r)) + r" \\" for r in frame.itertuples(index=False)]
    return [rf"\begin{{tabular}}{{{column_spec(frame)}}}", r"\toprule", head, r"\midrule",
            *body, r"\bottomrule", r"\end{tabular}"]


def to_latex(summary: pd.DataFrame, runs: pd.DataFrame | None = None,
             title: str | None = None) -> str:
    """A booktabs LaTeX table (needs \\usepackage{booktabs}); failures in a second tabular."""
    frame = display_frame(summary, lambda s: rf"\textbf{{{s}}}", r"$\pm$", r"$^\dagger$",
                          latex_escape)
    lines = [r"\begin{table}[htbp]", r"\centering"]
    lines += [rf"\caption{{{latex_escape(title)}}}"] if title else []
    lines += _tabular(frame)
    lines += [r"\par\smallskip $^\dagger$ not separated from the best at 5\% (Welch, Holm)."]
    if runs is not None and len(bad := failures(runs)):
        lines += [r"\par\medskip", r"Diverged, failed and unfinished runs:\par"]
        lines += _tabular(bad.map(latex_escape))
    return "\n".join([*lines, r"\end{table}"]) + "\n"
