"""Sweep dir -> one row per (job, seed) -> one row per group -> Markdown / CSV / LaTeX tables.

A group is a job's overrides minus the seed ones; its statistics (percent) are over the seeds that
finished ok. Diverged, failed and unfinished runs (no metrics.json yet: training, stopped, not
started, as `rundir.state_of` reads them) are listed with their error or state, never dropped.
Two columns say
whether a budget was enough: the mean best-validation epoch of the epochs run, and the mean slope of
validation accuracy over the last quarter of the epochs with its 95% interval over the seeds
(still rising: positive). Each group has a label (its
swept values, named by the experiment file's `labels:`, `labels.py`), its mean validation accuracy
beside the test one, and its test difference to the reference cell chosen on validation
(`significance.versus_reference`); every table format says the rule in its footnote.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cnn_jax.protocol import last_epochs_val_slope, seeds_of
from cnn_jax.results.labels import Labels, cell_label, value_label
from cnn_jax.results.records import METRICS, RUNTIME_KEYS, read_epochs, read_metrics
from cnn_jax.results.rundir import epochs_recorded, saved_config, state_of
from cnn_jax.results.significance import (
    REF,
    RULE,
    SIG_COLUMNS,
    highest_test_index,
    is_tied_with_ref,
    p_text,
    reference_index,
    t_quantile_975,
    versus_reference,
)

SEED_KEYS = frozenset({"seed", "train.seed", "train.seeds"})
# overrides that control how a run goes, not what it trains: never part of a configuration's label.
# The config keys that are no part of a run's identity (records.RUNTIME_KEYS), plus what only the
# tables see in overrides: the logger group (logger=csv) and Hydra's own settings. An override's
# key matches one of these when it is that key or lies under it (logger.wandb.project=x).
RUN_CONTROL_KEYS = frozenset({*RUNTIME_KEYS, "logger", "hydra"})
ACC_FIELDS = ("test_acc", "val_acc", "last_test_acc", "best_val_epoch", "final_train_loss")
RUN_COLUMNS = ("job", "group", "seed", "seeds_planned", "status", *ACC_FIELDS, "epochs",
               "val_slope_last", "reduced", "params", "flops_per_image", "seconds",
               "compile_seconds",
               "seconds_per_seed", "error")
STAT_COLUMNS = ("test_mean", "test_std", "test_ci95", "test_lo", "test_hi", "test_min", "test_max")
SUMMARY_COLUMNS = ("group", "label", "n", "n_runs", "val_mean", *STAT_COLUMNS, "last_test_mean",
                   "best_val_epoch_mean", "epochs", "val_slope_mean", "val_slope_ci95", "params",
                   "flops_per_image", "compile_seconds", "seconds_per_seed",
                   "failed_seeds", "diverged_seeds", "unfinished_seeds", "pruned_seeds",
                   *SIG_COLUMNS)
# the statuses of a (job, seed) listed as not ok (pruned: stopped early by a search's pruner)
NOT_OK = ("diverged", "failed", "unfinished", "pruned")
TIED = " †"  # marks a mean not separated from the reference at 5%
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


def last_epochs_val_slopes(job_dir: Path, n_seeds: int) -> list[float | None]:
    """Per seed (in per_seed's order), the slope of validation accuracy per epoch over the last
    quarter of the job's metrics.jsonl (`protocol.last_epochs_val_slope`; None where there is
    none)."""
    try:
        history = read_epochs(job_dir)
    except (OSError, ValueError):
        history = []
    return last_epochs_val_slope(history, n_seeds)


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
    if metrics is not None and metrics.get("status") == "interrupted":  # it continues when rerun
        metrics, problem = None, "no metrics.json"
    if metrics is None:  # one row for the job, standing for the seeds it trains (1 if unknown)
        unfinished = problem == "no metrics.json"
        seeds = _planned_seeds(job_dir) if unfinished else None
        seeds = seeds or [_seed_override(overrides)]
        return [{**base, "seed": seeds[0] if len(seeds) == 1 else None,
                 "seeds_planned": len(seeds), "status": "unfinished" if unfinished else "failed",
                 "error": unfinished_state(job_dir) if unfinished else problem}]
    per_seed = metrics.get("per_seed") or []
    secs, compile_secs = metrics.get("seconds"), metrics.get("compile_seconds") or 0.0
    base |= {"reduced": metrics.get("reduced_eval") or None,
             "params": metrics.get("params"), "flops_per_image": metrics.get("flops_per_image"),
             "seconds": secs, "compile_seconds": metrics.get("compile_seconds"),
             # a seed's share of the run's time less its compile (the first job of a sweep
             # compiles what the later ones load from the compile cache)
             "seconds_per_seed": (secs - compile_secs) / max(len(per_seed), 1) if secs else None}
    if not per_seed:
        status = metrics.get("status") or "failed"
        return [{**base, "seed": _seed_override(overrides), "status": status,
                 "error": metrics.get("error") or (None if status == "ok" else "no per_seed")}]
    rows = []
    slopes = last_epochs_val_slopes(job_dir, len(per_seed))
    for entry, slope in zip(per_seed, slopes, strict=True):
        status = entry.get("status") or metrics.get("status") or "failed"
        error = None if status == "ok" else entry.get("error") or metrics.get("error") or status
        rows.append({**base, "seed": entry.get("seed"), "status": status,
                     **{k: entry.get(k) for k in ACC_FIELDS}, "epochs": metrics.get("epochs"),
                     "val_slope_last": slope, "error": error})
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


def summarize(runs: pd.DataFrame, labels: Labels | None = None) -> pd.DataFrame:
    """One row per group, in sweep order; accuracies in percent over the seeds that finished ok;
    each group's label its swept values named by `labels` (`labels.cell_label`); the reference
    cell and each cell's test difference to it (`significance.versus_reference`)."""
    rows = []
    for group, g in runs.groupby("group", sort=False):
        ok = g[(g["status"] == "ok") & g["test_acc"].notna()]
        rows.append({"group": group, **{k: _first(g[k]) for k in override_keys(runs)},
                     "n": len(ok), "n_runs": int(g["seeds_planned"].sum()),
                     "val_mean": ok["val_acc"].astype(float).mean() * 100,
                     **mean_ci(ok["test_acc"].astype(float) * 100),
                     "last_test_mean": ok["last_test_acc"].astype(float).mean() * 100,
                     "best_val_epoch_mean": ok["best_val_epoch"].astype(float).mean(),
                     "epochs": ok["epochs"].max() if len(ok) else None,
                     **slope_stats(ok["val_slope_last"]),
                     "params": _first(g["params"]), "flops_per_image": _first(g["flops_per_image"]),
                     "compile_seconds": g["compile_seconds"].astype(float).mean(),
                     "seconds_per_seed": g["seconds_per_seed"].astype(float).mean(),
                     **{f"{status}_seeds": _seed_list(g, status) for status in NOT_OK}})
    columns = ["group", *override_keys(runs), *SUMMARY_COLUMNS[1:-len(SIG_COLUMNS)]]
    summary = pd.DataFrame(rows, columns=columns)
    keys = varying_keys(summary)
    summary["label"] = [cell_label(r, keys, labels or {}) if keys else r["group"]
                        for _, r in summary.iterrows()]
    ints = {"epochs": "Int64", "params": "Int64", "flops_per_image": "Int64"}
    return versus_reference(summary.astype(ints))


def experiment_of(runs: pd.DataFrame) -> str | None:
    """The experiment file every run of a sweep names (`experiment=...`), else None."""
    if "experiment" not in runs.columns:
        return None
    names = runs["experiment"].dropna().unique()
    return str(names[0]) if len(names) == 1 else None


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


def slope_stats(slopes: Iterable[float]) -> dict[str, float]:
    """The mean of the seeds' end slopes (fractions per epoch) in pp per epoch and its 95% t
    half-width (nan with fewer than 2 seeds; missing slopes left out)."""
    stats = mean_ci(100 * float(x) for x in slopes if x is not None and not pd.isna(x))
    return {"val_slope_mean": stats["test_mean"], "val_slope_ci95": stats["test_ci95"]}


def slope_text(stats: Mapping[str, float]) -> str:
    """'+0.017 [-0.001, +0.035]': a mean end slope (pp per epoch) and its 95% interval, read from
    `slope_stats`' keys (a summary row has them too), to 3 decimals so that the sign of a bound
    near 0 shows ('+0.017' without an interval, a single seed; '—' without a slope)."""
    mean, half = stats["val_slope_mean"], stats["val_slope_ci95"]
    if pd.isna(mean):
        return "—"
    interval = ("" if pd.isna(half) else
                f" [{signed(mean - half, 3)}, {signed(mean + half, 3)}]")
    return signed(mean, 3) + interval


def _is_ref(row: pd.Series) -> bool:
    """The reference cell as significance.versus_reference chose it (its one definition)."""
    return row["vs_ref"] == REF


def _mean_cell(row: pd.Series, pm: str, tied: str = "") -> str:
    """'mean ± std', followed by `tied` when the cell is not separated from the reference."""
    if row["n"] == 0:
        return "—"
    mark = tied if not _is_ref(row) and is_tied_with_ref(row["vs_ref"]) else ""
    return f"{row['test_mean']:.2f} {pm} {row['test_std']:.2f}{mark}"


def _vs_ref_cell(row: pd.Series) -> str:
    """'Δ [simultaneous 95% CI], p' against the reference cell, or why there is no test."""
    delta, half = row["delta_vs_ref"], row["delta_ci_sim"]
    if _is_ref(row) or pd.isna(delta):
        return str(row["vs_ref"])
    if pd.isna(half):
        return f"{signed(delta)} ({row['vs_ref']})"
    return (f"{signed(delta)} [{signed(delta - half)}, {signed(delta + half)}], "
            f"p={p_text(row['p_holm'])} ({row['vs_ref']})")


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
    """The summary as strings: one column per quantity, the reference cell's mean
    (versus_reference's choice) wrapped by `bold`, the means not separated from it followed by
    `tied`.

    The configuration column is each cell's label (its swept values, named by the experiment
    file's labels). `escape` is applied to every text cell that can hold user strings
    (configuration, vs reference, not ok), before any markup is added; the other cells hold only
    numbers and `bold`, `pm` and `tied`.
    """
    cells = [{"configuration": escape(str(r["label"])), "seeds ok": f"{r['n']}/{r['n_runs']}",
              "val acc % (mean)": _num(r["val_mean"]),
              "test acc % (mean ± std)": bold(_mean_cell(r, pm)) if _is_ref(r)
              else _mean_cell(r, pm, tied), "95% CI": _ci_cell(r),
              "vs reference: Δ test pp [simultaneous 95% CI], Holm p": escape(_vs_ref_cell(r)),
              "seeds for 80% power": _num(r["n_power80"], "d"),
              "min – max": f"{_num(r['test_min'])} – {_num(r['test_max'])}",
              "last-epoch test %": _num(r["last_test_mean"]),
              "best-val epoch": _epochs_cell(r), "val slope, last ¼, pp / epoch": slope_text(r),
              "params": _num(r["params"], ",.0f"),
              "FLOPs / image": _num(r["flops_per_image"], ",.0f"),
              "s / seed": _num(r["seconds_per_seed"], ".1f"),
              "compile s": _num(r["compile_seconds"], ".1f"), "not ok": escape(_not_ok_cell(r))}
             for _, r in summary.iterrows()]
    return pd.DataFrame(cells).astype(str)


def selection_note(summary: pd.DataFrame) -> str | None:
    """One sentence on whether the reference (chosen on validation) also has the highest test
    mean, naming the test-best cell when it does not; None without a reference."""
    ref_at = reference_index(summary)
    if ref_at is None:
        return None
    ref, best = summary.loc[ref_at], summary.loc[highest_test_index(summary)]
    if best.name == ref_at:
        return (f"The reference cell, {ref['label']}, also has the highest test mean "
                f"({ref['test_mean']:.2f}%).")
    return (f"The highest test mean is {best['label']}'s ({best['test_mean']:.2f}%, validation "
            f"{best['val_mean']:.2f}%), not the reference's, {ref['label']} "
            f"({ref['test_mean']:.2f}% test, {ref['val_mean']:.2f}% validation): the reference "
            "is chosen on validation.")


FOOTNOTE = (
    "Test accuracy (%) at the best-validation epoch over the seeds that finished ok; val acc: "
    "the validation accuracy there, mean over the same seeds; 95% CI = mean ± t(0.975, "
    "n−1)·std/√n. " + RULE + " Bold = the reference cell (among the cells with at least 2 ok "
    "seeds, with 1 when none has 2); {tied} = not separated from it at 5% (Holm; its interval "
    "then includes 0; a separated cell's interval can still reach 0, as Holm's step-down "
    "separates a little more than the Bonferroni intervals show). Cells with one seed are not "
    "tested. seeds for 80% power: "
    "for a cell not separated from the reference, the seeds per cell with which a Welch t-test "
    "at the intervals' level would separate the observed difference 80% of the time, at the "
    "observed standard deviations. best-val epoch: the mean epoch of best validation accuracy, "
    "of the epochs run; val slope, last ¼: each seed's least-squares slope of validation "
    "accuracy per epoch over the last quarter of the epochs run (at least 3), the mean over the "
    "seeds and its 95% t interval (positive: still rising when the budget ended; an interval "
    "that includes 0: no trend the seeds can show). s / seed: the run's wall time less "
    "its compile time (compile s, per run), per seed.")


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    """The (job, seed) rows not ok (diverged, failed, unfinished) with their error or state."""
    bad = runs[runs["status"] != "ok"]
    cells = bad[["job", "group", "seed", "status", "error"]].astype(object)
    return cells.where(cells.notna(), "—").astype(str)


def _md(frame: pd.DataFrame) -> str:
    cells = frame.map(lambda c: str(c).replace("|", r"\|")).rename(columns=str)
    return cells.to_markdown(index=False, disable_numparse=True)


def pivot_markdown(summary: pd.DataFrame, keys: tuple[str, str],
                   labels: Labels | None = None) -> str:
    """Markdown grid: rows = first key's values, columns = second key's (named by `labels`);
    cell = mean ± std [CI]."""
    rk, ck = keys
    named = lambda k: lambda v: "(default)" if pd.isna(v) else value_label(  # noqa: E731
        k, v, labels or {}, keyed=False)
    grid = summary.assign(**{k: summary[k].map(named(k)) for k in keys})
    table = pd.DataFrame(index=list(dict.fromkeys(grid[rk])),
                         columns=list(dict.fromkeys(grid[ck])), data="—")
    for _, r in grid.iterrows():
        cell = _mean_cell(r, "±", TIED) + ("" if r["n"] < 2 else " " + _ci_cell(r))
        table.loc[r[rk], r[ck]] = f"**{cell}**" if _is_ref(r) else cell
    return _md(table.rename_axis(f"{rk} \\ {ck}").reset_index())


def reduced_note(runs: pd.DataFrame) -> str | None:
    """A line naming the jobs scored on part of the validation or test split (data.val_limit /
    data.test_limit: a quick look, not a result), else None."""
    if "reduced" not in runs:
        return None
    jobs = sorted(set(runs.loc[runs["reduced"].fillna("").astype(bool), "job"]), key=str)
    if not jobs:
        return None
    return (f"**Reduced evaluation** (data.val_limit / data.test_limit: scored on the first "
            f"images of a split only, a quick look): job(s) {', '.join(map(str, jobs))}.")


def to_markdown(summary: pd.DataFrame, runs: pd.DataFrame | None = None,
                title: str | None = None, labels: Labels | None = None) -> str:
    """Markdown table, its footnote (the selection rule, and whether the reference has the
    highest test mean), the 2-D pivot when groups form a grid, the failures (given the runs)."""
    parts = [f"## {title}"] if title else []
    parts += [_md(display_frame(summary, lambda s: f"**{s}**")),
              FOOTNOTE.format(tied=TIED.strip())]
    if (note := selection_note(summary)) is not None:
        parts.append(note)
    common = common_overrides(summary)
    if common:
        parts.append(f"Common to every configuration: {common}.")
    if (keys := grid_keys(summary)) is not None:
        parts += [f"### {keys[0]} × {keys[1]}", pivot_markdown(summary, keys, labels)]
    if runs is not None and (note := reduced_note(runs)) is not None:
        parts.append(note)
    if runs is not None:
        bad = failures(runs)
        parts += ["### Diverged, failed and unfinished runs",
                  _md(bad) if len(bad) else f"None: all {len(runs)} runs finished ok."]
    return "\n\n".join(parts) + "\n"


def to_csv(summary: pd.DataFrame) -> str:
    """CSV of the summary: numbers unformatted (accuracies in percent; p_holm to 4 significant
    digits, so a small one keeps its digits), seed lists joined by ';'."""
    out = summary.copy()
    for col in (f"{status}_seeds" for status in NOT_OK):
        out[col] = out[col].map(";".join)
    out["p_holm"] = out["p_holm"].map(lambda p: "" if pd.isna(p) else f"{p:.4g}")
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
    note = " ".join(filter(None, [RULE, selection_note(summary)]))
    lines += [r"\par\smallskip $^\dagger$ not separated from the reference cell (bold) at 5\% "
              rf"(Welch, Holm). {latex_escape(note)}"]
    if runs is not None and len(bad := failures(runs)):
        lines += [r"\par\medskip", r"Diverged, failed and unfinished runs:\par"]
        lines += _tabular(bad.map(latex_escape))
    return "\n".join([*lines, r"\end{table}"]) + "\n"
