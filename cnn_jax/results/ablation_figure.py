"""A sweep's figure: one row per cell, each seed's test accuracy as a dot, the cell's mean, and
the simultaneous interval of its difference to the reference cell drawn around that mean.

The reference cell (chosen on validation, `significance.reference_index`) is marked and its mean
drawn as a dashed line across the plot: a cell's interval crosses that line exactly when the
interval of its difference to the reference includes zero. Cells not separated from the
reference are marked apart from those separated from it. Dots, not bars: the accuracy axis is
zoomed to the seeds, and no length on it stands for a quantity. The PNG carries no software
version, so the same records and library versions give the same bytes.

A single run's figures (filters, feature maps, curves, ...) are in `figures.py`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from cnn_jax.atomic import write_atomic
from cnn_jax.results.significance import NOT_SEPARATED, REF, SEPARATED

# marker and colour of a cell's mean by its verdict against the reference (the rest: untested)
STYLES = {REF: ("D", "tab:blue", "reference cell (highest validation mean)"),
          NOT_SEPARATED: ("o", "tab:orange", "not separated from the reference (Holm, 5%)"),
          SEPARATED: ("o", "tab:gray", "separated from the reference"),
          None: ("x", "black", "untested (fewer than 2 seeds)")}


def save_figure_atomic(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a figure as PNG, atomically, without the software version in its metadata."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return write_atomic(path, png.getvalue())


def x_limits(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> tuple[float, float]:
    """An accuracy axis zoomed to the seeds, the means and their intervals, padded, within
    [0, 100]; [0, 100] when no cell has an ok seed."""
    ok = summary[summary["n"] > 0]
    half = ok["delta_ci_sim"].fillna(0.0)
    lows = pd.concat([ok["test_mean"] - half, ok["test_min"]]).dropna()
    highs = pd.concat([ok["test_mean"] + half, ok["test_max"]]).dropna()
    if lows.empty:
        return 0.0, 100.0
    lo, hi = float(lows.min()), float(highs.max())
    pad = max(0.08 * (hi - lo), 0.05)
    return max(lo - pad, 0.0), min(hi + 3 * pad, 100.0)


def mean_text(row: pd.Series) -> str:
    """The text beside a cell's row: its mean and seeds; without a finished seed, whether its
    runs are all unfinished (a sweep still running) or none finished ok."""
    if row["n"]:
        return f"{row['test_mean']:.2f} (n={row['n']})"
    bad = [list(row.get(f"{s}_seeds") or []) for s in ("failed", "diverged", "unfinished")]
    return "unfinished" if bad[2] and not (bad[0] or bad[1]) else "no ok seeds"


def _seed_accuracies(runs: pd.DataFrame | None, group: str) -> np.ndarray:
    if runs is None:
        return np.array([])
    ok = runs[(runs["status"] == "ok") & runs["test_acc"].notna() & (runs["group"] == group)]
    return ok["test_acc"].to_numpy(dtype=float) * 100


def ablation_dots(summary: pd.DataFrame, path: str | os.PathLike, title: str | None = None,
                  runs: pd.DataFrame | None = None) -> Path:
    """`dots_figure` saved as a PNG at `path`."""
    return save_figure_atomic(dots_figure(summary, title, runs), path)


def dots_figure(summary: pd.DataFrame, title: str | None = None,
                runs: pd.DataFrame | None = None) -> Figure:
    """Dot plot of the cells (rows, in table order, labelled by their `label`): each ok seed's
    test accuracy (given the runs), the mean marked by its verdict, the simultaneous interval of
    the difference to the reference around it, the reference mean as a line; the legend below."""
    n = len(summary)
    height = 1.6 + 0.42 * n
    fig = Figure(figsize=(8.0, height))
    FigureCanvasAgg(fig)
    # margins in inches, so that a figure of a few cells keeps room under the axes for the tick
    # labels and the x label, above the legend hung below the figure
    fig.subplots_adjust(bottom=0.7 / height, top=1 - 0.4 / height)
    ax = fig.add_subplot()
    lo, hi = x_limits(summary, runs)
    ref = summary[summary["vs_ref"] == REF]
    if len(ref):
        ax.axvline(ref["test_mean"].iloc[0], color=STYLES[REF][1], ls="--", lw=1, zorder=1)
    for i, (_, r) in enumerate(summary.iterrows()):
        y = n - 1 - i
        accs = _seed_accuracies(runs, r["group"])
        if len(accs):
            jitter = np.linspace(-0.18, 0.18, len(accs)) if len(accs) > 1 else np.zeros(1)
            ax.plot(accs, y + jitter, "o", ms=3.5, color="black", alpha=0.45, zorder=2)
        if not r["n"]:
            ax.text(lo + 0.02 * (hi - lo), y, mean_text(r), va="center", fontsize=8,
                    color="crimson")
            continue
        marker, color, _ = STYLES.get(r["vs_ref"], STYLES[None])
        if not pd.isna(r["delta_ci_sim"]):
            ax.plot([r["test_mean"] - r["delta_ci_sim"], r["test_mean"] + r["delta_ci_sim"]],
                    [y, y], color=color, lw=2.2, solid_capstyle="butt", zorder=3)
        ax.plot([r["test_mean"]], [y], marker, ms=8, color=color, mec="black", mew=0.6, zorder=4)
        ax.text(hi, y, mean_text(r) + "  ", va="center", ha="right", fontsize=8, color="0.25")
    ax.set_yticks(range(n), [str(label) for label in summary["label"]][::-1], fontsize=9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("test accuracy at the best-validation epoch (%)")
    ax.set_title(title or "Ablation", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    shown = [s if s in STYLES else None for s in summary.loc[summary["n"] > 0, "vs_ref"]]
    handles = [Line2D([], [], ls="", marker=m, color=c, mec="black", mew=0.6, ms=7, label=text)
               for verdict, (m, c, text) in STYLES.items() if verdict in shown]
    handles += [Line2D([], [], ls="", marker="o", ms=3.5, color="black", alpha=0.45,
                       label="one seed"),
                Line2D([], [], color=STYLES[REF][1], ls="--", lw=1,
                       label="the reference cell's mean"),
                Line2D([], [], color="0.35", lw=2.2,
                       label="simultaneous 95% interval of the difference to the reference,\n"
                             "around the cell's mean: it crosses the dashed line when it "
                             "includes 0")]
    fig.legend(handles=handles, loc="upper center", ncol=2, fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return fig
