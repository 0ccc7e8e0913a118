"""A sweep's figure: the ablation bar chart (mean test accuracy, 95% CI over seeds).

A single run's figures (filters, feature maps, curves, ...) are in `figures.py`.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnn_jax.atomic import write_atomic
from cnn_jax.results.tables import grid_keys, varying_keys


def save_figure_atomic(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a figure as PNG, atomically."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi, bbox_inches="tight")
    return write_atomic(path, png.getvalue())


def y_limits(summary: pd.DataFrame) -> tuple[float, float]:
    """An accuracy axis zoomed to the means and their intervals, padded, within [0, 100]."""
    ok = summary[summary["n"] > 0]
    ci = ok["test_ci95"].fillna(0.0)
    lows = pd.concat([ok["test_mean"] - ci, ok["test_min"]]).dropna()
    highs = pd.concat([ok["test_mean"] + ci, ok["test_max"]]).dropna()
    if lows.empty:
        return 0.0, 100.0
    lo, hi = float(lows.min()), float(highs.max())
    pad = max(0.15 * (hi - lo), 0.1)
    return max(lo - 2 * pad, 0.0), min(hi + pad, 100.0 + pad / 2)


def _bar_labels(summary: pd.DataFrame) -> tuple[list[str], str]:
    """Tick labels and x label: the value for one varying key, else key=value pairs."""
    keys = varying_keys(summary)
    if len(keys) == 1:
        return [str(v) for v in summary[keys[0]].fillna("(default)")], keys[0]
    if not keys:
        return list(summary["group"]), "configuration"
    rows = summary[keys].itertuples(index=False)
    return [", ".join(f"{k}={v}" for k, v in zip(keys, vals, strict=True) if not pd.isna(v))
            or "default" for vals in rows], "configuration"


def _layout(summary: pd.DataFrame) -> tuple[np.ndarray, float, list, list[str], str, list]:
    """Bar x positions, width, tick positions and labels, x label, and (legend label, rows)."""
    keys = grid_keys(summary)
    if keys is None:
        x = np.arange(len(summary), dtype=float)
        return x, 0.7, list(x), *_bar_labels(summary), []
    rk, ck = keys
    grid = summary.assign(**{k: summary[k].fillna("(default)") for k in keys})
    rows, cols = list(dict.fromkeys(grid[rk])), list(dict.fromkeys(grid[ck]))
    width = 0.8 / len(cols)
    x = np.array([rows.index(r) + (cols.index(c) - (len(cols) - 1) / 2) * width
                  for r, c in zip(grid[rk], grid[ck], strict=True)])
    series = [(f"{ck}={c}", list(grid[ck] == c)) for c in cols]
    return x, width, list(range(len(rows))), [str(r) for r in rows], rk, series


def cell_label(row: pd.Series) -> str:
    """The text on a cell's bar: its mean and seeds; without a finished seed, whether its runs
    are all unfinished (a sweep still running) or none finished ok."""
    if row["n"]:
        return f"{row['test_mean']:.2f}\nn={row['n']}"
    bad = [list(row.get(f"{s}_seeds") or []) for s in ("failed", "diverged", "unfinished")]
    return "unfinished" if bad[2] and not (bad[0] or bad[1]) else "no ok\nseeds"


def ablation_bars(summary: pd.DataFrame, path: str | os.PathLike, title: str | None = None,
                  runs: pd.DataFrame | None = None) -> Path:
    """PNG bar chart of mean test accuracy per group, 95% CI error bars; grouped for 2 keys."""
    x, width, ticks, labels, xlabel, series = _layout(summary)
    lo, hi = y_limits(summary)
    fig = Figure(figsize=(max(4.5, 0.9 * len(summary) + 2.0), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    mean = summary["test_mean"].to_numpy(dtype=float)
    err = summary["test_ci95"].fillna(0.0).to_numpy(dtype=float)
    for label, mask in series or [(None, [True] * len(summary))]:
        m = np.asarray(mask) & np.isfinite(mean)
        ax.bar(x[m], mean[m] - lo, width * 0.95, bottom=lo, yerr=err[m], capsize=4,
               label=label, edgecolor="black", linewidth=0.6, error_kw={"elinewidth": 1.2})
    for xi, (_, r) in zip(x, summary.iterrows(), strict=True):
        style = ({"color": "white", "fontweight": "bold"} if r["n"] else {"color": "crimson"})
        ax.text(xi, lo + 0.02 * (hi - lo), cell_label(r), ha="center", va="bottom", fontsize=8,
                **style)
    if runs is not None:
        _scatter_seeds(ax, summary, runs, x)
    ax.set_ylim(lo, hi)
    slanted = max(map(len, labels)) * len(labels) > 12 * fig.get_figwidth()
    ax.set_xticks(ticks, labels, fontsize=9, rotation=30 if slanted else 0,
                  ha="right" if slanted else "center", rotation_mode="anchor")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy at best-val epoch (%)")
    ax.set_title(title or "Ablation: mean test accuracy, 95% CI over seeds", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure_atomic(fig, path)


def _scatter_seeds(ax, summary: pd.DataFrame, runs: pd.DataFrame, x: np.ndarray) -> None:
    """Overlay each ok seed's test accuracy as a dot on its group's bar."""
    ok = runs[(runs["status"] == "ok") & runs["test_acc"].notna()]
    for xi, group in zip(x, summary["group"], strict=True):
        accs = ok.loc[ok["group"] == group, "test_acc"].astype(float) * 100
        if len(accs) and math.isfinite(xi):
            ax.plot([xi] * len(accs), accs, "o", ms=3, color="black", alpha=0.6, zorder=3)
