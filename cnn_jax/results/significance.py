"""Each cell of an ablation table against the reference cell: chosen on validation, tested once.

The reference cell is the one with the highest mean *validation* accuracy (each seed at its
best-validation epoch) among the cells with at least two ok seeds (among the cells with one, when
no cell has two): test accuracy plays no part in choosing it, so the test set is used once, to
compare. A cell where a single seed survived could otherwise be the reference by luck and leave
every other cell untested. On an exact tie the first cell in the summary's order is the
reference. This is the one definition of "the reference cell": the tables bold the cell whose
vs_ref is REF.

Every other cell with at least two ok seeds (and a reference with at least two) gets the
difference of its mean *test* accuracy to the reference's and a two-sided Welch t-test; the
p-values of all m tested cells are Holm-corrected together. A cell is "not separated" from the
reference when its corrected p-value is at least ALPHA. Its interval is the Welch interval at the
Bonferroni level 1 - ALPHA/m, simultaneous over the m comparisons: Holm's corrected p-value is at
most m times the raw one, so an interval that excludes zero (raw p < ALPHA/m) always belongs to a
separated cell, and no "not separated" cell shows one that excludes zero (the converse need not
hold: Holm separates a little more than Bonferroni's intervals show). Cells with fewer than two
seeds get no test, and say so (their difference to the reference is still given).

n_power80: for each cell not separated from the reference, the seeds per cell (both cells that
many) with which a two-sided Welch t-test at the same Bonferroni level would separate the
observed difference with 80% power, given the observed standard deviations (noncentral t with
Welch's degrees of freedom); "not separated" then reads either as "equal within what these seeds
resolve" or as "too few seeds", by how far n_power80 lies above the seeds run.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import pandas as pd
from scipy import stats

SIG_COLUMNS = ("delta_vs_ref", "delta_ci_sim", "p_holm", "vs_ref", "n_power80")
ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 1_000_000  # n_power80 beyond this reads as unreachable (nan)
REF, SEPARATED, NOT_SEPARATED, NO_DATA = "reference", "separated", "not separated", "no ok seeds"
ONE_SEED, NO_SPREAD = "untested: 1 seed", "untested: no spread"
MIN_TESTED = 2  # ok seeds a cell needs for a test, and to be preferred as the reference cell
RULE = ("The reference cell is the one with the highest mean validation accuracy (each seed at "
        "its best-validation epoch), chosen without looking at test accuracy; every other cell's "
        "test difference to it has its Welch interval, simultaneous at 95% over the comparisons "
        "(Bonferroni), and its Welch t-test's p-value, Holm-corrected.")


def t_quantile(level: float, df: float) -> float:
    """Student-t critical value of a two-sided `level` interval (nan when df <= 0)."""
    return float(stats.t.ppf(0.5 + level / 2, df)) if df > 0 else math.nan


def t_quantile_975(df: float) -> float:
    """Student-t critical value t(0.975, df) of a two-sided 95% interval (nan when df <= 0)."""
    return t_quantile(0.95, df)


def welch_df(std: float, n: int, ref_std: float, ref_n: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two means."""
    var, ref_var = std**2 / n, ref_std**2 / ref_n
    return (var + ref_var) ** 2 / (var**2 / (n - 1) + ref_var**2 / (ref_n - 1))


def welch(mean: float, std: float, n: int, ref_mean: float, ref_std: float, ref_n: int,
          level: float = 0.95) -> dict[str, float]:
    """Welch's comparison of a cell with a reference: difference, the half-width of its `level`
    interval, df, t, two-sided p. Needs n >= 2 and ref_n >= 2 and a positive standard error;
    std are sample std (ddof 1)."""
    se = math.sqrt(std**2 / n + ref_std**2 / ref_n)
    df = welch_df(std, n, ref_std, ref_n)
    diff = mean - ref_mean
    test = stats.ttest_ind_from_stats(mean, std, n, ref_mean, ref_std, ref_n, equal_var=False)
    return {"diff": diff, "half": t_quantile(level, df) * se, "df": df, "t": diff / se,
            "p": float(test.pvalue)}


def welch_power(diff: float, std: float, ref_std: float, n: int, alpha: float) -> float:
    """Power of a two-sided Welch t-test at level `alpha` with n seeds in each cell to detect a
    true difference `diff` between cells of these standard deviations (noncentral t)."""
    se = math.sqrt((std**2 + ref_std**2) / n)
    df = welch_df(std, n, ref_std, n)
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    ncp = abs(diff) / se
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def seeds_for_power(diff: float, std: float, ref_std: float, alpha: float,
                    power: float = POWER) -> float:
    """The fewest seeds per cell (>= 2) with which `welch_power` reaches `power`; nan when the
    difference is zero, there is no spread, or it takes more than MAX_SEEDS."""
    if diff == 0 or not math.isfinite(diff) or std**2 + ref_std**2 == 0:
        return math.nan
    reaches = lambda n: welch_power(diff, std, ref_std, n, alpha) >= power  # noqa: E731
    low, high = 1, 2  # reaches(low) is False (one seed has no test), reaches(high) unknown
    while not reaches(high):
        low, high = high, 2 * high
        if high > MAX_SEEDS:
            return math.nan
    while high - low > 1:  # the power rises with n: bisect for the first n that reaches it
        mid = (low + high) // 2
        low, high = (low, mid) if reaches(mid) else (mid, high)
    return float(high)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [math.nan] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def _untested(row: pd.Series, ref: pd.Series) -> str | None:
    if row["n"] == 0:
        return NO_DATA
    if min(row["n"], ref["n"]) < MIN_TESTED:
        return ONE_SEED
    if row["test_std"] == 0 and ref["test_std"] == 0:
        return NO_SPREAD
    return None


def _highest(summary: pd.DataFrame, column: str) -> Hashable | None:
    for least in (MIN_TESTED, 1):
        means = summary.loc[summary["n"] >= least, column].dropna()
        if not means.empty:
            return means.idxmax()
    return None


def reference_index(summary: pd.DataFrame) -> Hashable | None:
    """The index of the reference cell: the highest val_mean among the cells with n >= 2, or
    among those with n >= 1 when no cell has two ok seeds; the first one on an exact tie; None
    when no cell has an ok seed."""
    return _highest(summary, "val_mean")


def highest_test_index(summary: pd.DataFrame) -> Hashable | None:
    """The cell with the highest test_mean, by the same rule (shown, never chosen on)."""
    return _highest(summary, "test_mean")


def versus_reference(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary (val_mean, test_mean, test_std, n per group) with SIG_COLUMNS appended.

    The reference cell (`reference_index`) gets vs_ref REF and delta 0; every other cell its
    test difference to the reference and, when both have two seeds or more, the Welch test,
    Holm-corrected over the tested cells, with the simultaneous (Bonferroni) interval's
    half-width and, when not separated, n_power80. A 1-seed cell with a higher mean than the
    reference gets a positive difference and is "untested: 1 seed".
    """
    out = summary.copy()
    for col in ("delta_vs_ref", "delta_ci_sim", "p_holm"):
        out[col] = math.nan
    out["vs_ref"] = NO_DATA
    out["n_power80"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    ref_at = reference_index(summary)
    if ref_at is None:
        return out
    ref = summary.loc[ref_at]
    tested = []
    for index, row in summary.iterrows():
        if index == ref_at:
            out.loc[index, ["delta_vs_ref", "vs_ref"]] = [0.0, REF]
            continue
        if row["n"] > 0:
            out.loc[index, "delta_vs_ref"] = row["test_mean"] - ref["test_mean"]
        reason = _untested(row, ref)
        if reason is not None:
            out.loc[index, "vs_ref"] = reason
            continue
        tested.append(index)
    level = 1 - ALPHA / max(len(tested), 1)  # Bonferroni: simultaneous over the comparisons
    tests = {i: welch(summary.loc[i, "test_mean"], summary.loc[i, "test_std"],
                      summary.loc[i, "n"], ref["test_mean"], ref["test_std"], ref["n"], level)
             for i in tested}
    for index, p in zip(tested, holm([tests[i]["p"] for i in tested]), strict=True):
        separated = p < ALPHA
        out.loc[index, ["delta_ci_sim", "p_holm", "vs_ref"]] = [
            tests[index]["half"], p, SEPARATED if separated else NOT_SEPARATED]
        if not separated:
            n = seeds_for_power(tests[index]["diff"], summary.loc[index, "test_std"],
                                ref["test_std"], 1 - level)
            out.loc[index, "n_power80"] = pd.NA if math.isnan(n) else int(n)
    return out


def is_tied_with_ref(vs_ref: str) -> bool:
    """True for the reference cell and the cells not separated from it at 5%."""
    return vs_ref in (REF, NOT_SEPARATED)


def p_text(p: float) -> str:
    """A p-value for a table: 2 significant digits (0.10, not 0.1), scientific notation under
    1e-3."""
    return f"{p:.1e}" if p < 1e-3 else f"{p:#.2g}"
