"""Each cell of an ablation table against the best cell: Welch interval, Holm-corrected p-value.

The best cell is the one with the highest mean test accuracy among the cells with at least two ok
seeds (among the cells with one, when no cell has two): a cell where a single seed survived could
otherwise be best by luck and leave every other cell untested. On an exact tie the first cell in
the summary's order is the best, and the others are compared with it like any cell. This is the
one definition of "the best cell": the tables bold the cell whose vs_best is BEST.

Every other cell with at least two ok seeds (and a best cell with at least two) gets the
difference of its mean to the best one, the 95% Welch interval of that difference, and a
two-sided Welch t-test; the p-values of all tested cells are Holm-corrected together. A cell is
"not separated" from the best when its corrected p-value is at least 5%. Cells with fewer than two
seeds get no test, and say so (their difference to the best is still given).

What this does not correct for: the best cell is picked by the same test means it is then
compared on, so a near-tie leans towards "separated" (the pick favours a cell whose seeds drew
high); and the 95% intervals are per comparison while the verdict is Holm's, so with many cells
an interval can exclude zero for a cell that is still "not separated".
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import pandas as pd
from scipy import stats

SIG_COLUMNS = ("delta_vs_best", "delta_ci95", "p_holm", "vs_best")
ALPHA = 0.05
BEST, SEPARATED, NOT_SEPARATED, NO_DATA = "best", "separated", "not separated", "no ok seeds"
ONE_SEED, NO_SPREAD = "untested: 1 seed", "untested: no spread"
MIN_TESTED = 2  # ok seeds a cell needs for a test, and to be preferred as the best cell


def t_quantile_975(df: float) -> float:
    """Student-t critical value t(0.975, df) of a two-sided 95% interval (nan when df <= 0)."""
    return float(stats.t.ppf(0.975, df)) if df > 0 else math.nan


def welch(mean: float, std: float, n: int, ref_mean: float, ref_std: float,
          ref_n: int) -> dict[str, float]:
    """Welch's comparison of a cell with a reference: difference, 95% half-width, df, t, p.

    Needs n >= 2 and ref_n >= 2 and a positive standard error; std are sample std (ddof 1).
    """
    var, ref_var = std**2 / n, ref_std**2 / ref_n
    se = math.sqrt(var + ref_var)
    df = (var + ref_var) ** 2 / (var**2 / (n - 1) + ref_var**2 / (ref_n - 1))
    diff = mean - ref_mean
    test = stats.ttest_ind_from_stats(mean, std, n, ref_mean, ref_std, ref_n, equal_var=False)
    return {"diff": diff, "half": t_quantile_975(df) * se, "df": df, "t": diff / se,
            "p": float(test.pvalue)}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [math.nan] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def _untested(row: pd.Series, best: pd.Series) -> str | None:
    if row["n"] == 0:
        return NO_DATA
    if min(row["n"], best["n"]) < MIN_TESTED:
        return ONE_SEED
    if row["test_std"] == 0 and best["test_std"] == 0:
        return NO_SPREAD
    return None


def best_index(summary: pd.DataFrame) -> Hashable | None:
    """The index of the best cell: the highest test_mean among the cells with n >= 2, or among
    those with n >= 1 when no cell has two ok seeds; the first one on an exact tie; None when no
    cell has an ok seed."""
    for least in (MIN_TESTED, 1):
        means = summary.loc[summary["n"] >= least, "test_mean"].dropna()
        if not means.empty:
            return means.idxmax()
    return None


def versus_best(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary (test_mean, test_std, n per group) with SIG_COLUMNS appended.

    The best cell (`best_index`: the highest mean among the cells with at least two ok seeds when
    there is one, else among the cells with one; the first on a tie) gets vs_best BEST and
    delta 0; every other cell its difference to the best and, when both have two seeds or more,
    the Welch test, Holm-corrected over the tested cells. A 1-seed cell with a higher mean than
    the best gets a positive difference and is "untested: 1 seed".
    """
    out = summary.copy()
    for col in SIG_COLUMNS[:3]:
        out[col] = math.nan
    out["vs_best"] = NO_DATA
    best_at = best_index(summary)
    if best_at is None:
        return out
    best = summary.loc[best_at]
    tested, pvalues = [], []
    for index, row in summary.iterrows():
        if index == best_at:
            out.loc[index, ["delta_vs_best", "vs_best"]] = [0.0, BEST]
            continue
        if row["n"] > 0:
            out.loc[index, "delta_vs_best"] = row["test_mean"] - best["test_mean"]
        reason = _untested(row, best)
        if reason is not None:
            out.loc[index, "vs_best"] = reason
            continue
        w = welch(row["test_mean"], row["test_std"], row["n"], best["test_mean"],
                  best["test_std"], best["n"])
        out.loc[index, "delta_ci95"] = w["half"]
        tested.append(index)
        pvalues.append(w["p"])
    for index, p in zip(tested, holm(pvalues), strict=True):
        out.loc[index, ["p_holm", "vs_best"]] = [p, SEPARATED if p < ALPHA else NOT_SEPARATED]
    return out


def is_tied_with_best(vs_best: str) -> bool:
    """True for the best cell and the cells not separated from it at 5%."""
    return vs_best in (BEST, NOT_SEPARATED)
