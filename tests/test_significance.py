"""Each cell vs the reference (the highest validation mean): simultaneous Welch intervals, Holm-
corrected p-values and the seeds for 80% power, checked against values worked out here from the
textbook formulas on small fake sweeps."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cnn_jax.results import significance, tables

T975_DF4 = 2.7764  # Student t(0.975, 4), from a printed table
T9875_DF4 = 3.4954  # Student t(1 - 0.05 / 4, 4): two comparisons' Bonferroni level, 97.5% two-sided


def two_sided_p_even_df(t: float, df: int) -> float:
    """Two-sided p of Student's t for even df, by the closed form
    P(|T| < t) = x * sum_j c_j (1 - x^2)^j, x = t / sqrt(df + t^2), c_0 = 1, c_j = c_{j-1}(2j-1)/2j.
    """
    x = abs(t) / math.sqrt(df + t * t)
    total, c = 0.0, 1.0
    for j in range(df // 2):
        c = 1.0 if j == 0 else c * (2 * j - 1) / (2 * j)
        total += c * (1 - x * x) ** j
    return 1.0 - x * total


def write_job(sweep: Path, name: str, pooling: str, accs: list[float],
              vals: list[float] | None = None) -> None:
    """A job of `accs` test accuracies (and `vals` validation ones: the same when not given)."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"pooling={pooling}", f"train.seeds={len(accs)}"]
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    per_seed = [{"seed": i, "status": "ok", "best_val_epoch": 3, "val_acc": v, "test_acc": a,
                 "last_test_acc": a, "final_train_loss": 0.1}
                for i, (a, v) in enumerate(zip(accs, vals or accs, strict=True))]
    status = "ok" if accs else "failed"
    (job / "metrics.json").write_text(json.dumps({
        "status": status, "overrides": overrides, "per_seed": per_seed, "params": 10,
        "flops_per_image": 20, "seconds": 3.0, "error": None if accs else "boom"}))


@pytest.fixture
def summary(tmp_path: Path) -> pd.DataFrame:
    """best (std 0.2), close (0.4 below, std 0.2), far (1.0 below), one seed, and a failed cell."""
    sweep = tmp_path / "sweep"
    write_job(sweep, "0", "close", [0.986, 0.988, 0.990])
    write_job(sweep, "1", "best", [0.990, 0.992, 0.994])
    write_job(sweep, "2", "far", [0.980, 0.982, 0.984])
    write_job(sweep, "3", "single", [0.995 - 0.02])
    write_job(sweep, "4", "failed", [])
    return tables.summarize(tables.collect_runs(sweep)).set_index("pooling")


def test_welch_interval_and_holm_p_match_hand_computation(summary: pd.DataFrame) -> None:
    se = math.sqrt(0.2**2 / 3 + 0.2**2 / 3)  # equal std and n: Welch df = 2 (n - 1) = 4
    df = (0.2**2 / 3 + 0.2**2 / 3) ** 2 / (2 * (0.2**2 / 3) ** 2 / 2)
    assert df == pytest.approx(4.0)
    p_close = two_sided_p_even_df(-0.4 / se, 4)  # t = -2.449, p = 0.0705
    p_far = two_sided_p_even_df(-1.0 / se, 4)  # t = -6.124, p = 0.0036
    assert p_close == pytest.approx(0.0705, abs=1e-4) and p_far < p_close
    close, far = summary.loc["close"], summary.loc["far"]
    assert close["delta_vs_ref"] == pytest.approx(-0.4)
    # simultaneous over the 2 tested cells: Bonferroni's 1 - 0.05/2 two-sided level, not 95%
    assert close["delta_ci_sim"] == pytest.approx(T9875_DF4 * se, abs=1e-4)  # 0.5708
    assert far["delta_ci_sim"] == pytest.approx(T9875_DF4 * se, abs=1e-4)
    # Holm over 2 tests: the smaller p doubled, the larger one kept (it is larger than that)
    assert far["p_holm"] == pytest.approx(2 * p_far, rel=1e-6)
    assert close["p_holm"] == pytest.approx(max(p_close, 2 * p_far), rel=1e-6)
    assert (close["vs_ref"], far["vs_ref"]) == ("not separated", "separated")
    best = summary.loc["best"]
    assert (best["vs_ref"], best["delta_vs_ref"]) == ("reference", 0.0)
    assert math.isnan(best["p_holm"]) and math.isnan(best["delta_ci_sim"])


def test_one_seed_and_failed_cells_are_untested_not_nan_crashes(summary: pd.DataFrame) -> None:
    single, failed = summary.loc["single"], summary.loc["failed"]
    assert single["vs_ref"] == "untested: 1 seed"
    assert single["delta_vs_ref"] == pytest.approx(97.5 - 99.2)
    assert math.isnan(single["delta_ci_sim"]) and math.isnan(single["p_holm"])
    assert failed["vs_ref"] == "no ok seeds" and math.isnan(failed["delta_vs_ref"])


def test_unequal_variances_use_the_welch_satterthwaite_df() -> None:
    v1, v2 = 0.3**2 / 4, 0.1**2 / 6
    df = (v1 + v2) ** 2 / (v1**2 / 3 + v2**2 / 5)  # 3.64
    w = significance.welch(98.5, 0.3, 4, 99.0, 0.1, 6)
    assert w["df"] == pytest.approx(df)
    assert w["t"] == pytest.approx(-0.5 / math.sqrt(v1 + v2))
    assert w["half"] == pytest.approx(significance.t_quantile_975(df) * math.sqrt(v1 + v2))
    assert 2.7764 < significance.t_quantile_975(df) < 3.1824  # between t(.975, 4) and t(.975, 3)


def test_holm_step_down_by_hand() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone 0.06
    got = significance.holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert significance.holm([0.6, 0.9]) == [1.0, 1.0] and significance.holm([]) == []


def test_t_quantile() -> None:
    assert significance.t_quantile_975(4) == pytest.approx(T975_DF4, abs=1e-4)
    assert significance.t_quantile_975(10_000) == pytest.approx(1.9602, abs=1e-4)
    assert math.isnan(significance.t_quantile_975(0))


def test_a_one_seed_cell_with_the_highest_mean_is_not_the_best(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_job(sweep, "0", "lucky", [0.999])
    write_job(sweep, "1", "a", [0.990, 0.992, 0.994])
    write_job(sweep, "2", "b", [0.980, 0.982, 0.984])
    summary = tables.summarize(tables.collect_runs(sweep)).set_index("pooling")
    assert list(summary["vs_ref"]) == ["untested: 1 seed", "reference", "separated"]
    assert summary.loc["lucky", "delta_vs_ref"] == pytest.approx(99.9 - 99.2)
    assert summary.loc["b", "p_holm"] < 0.05
    md = tables.to_markdown(summary.reset_index())
    assert "**99.20 ± 0.20**" in md and "**99.90" not in md and md.count("**") == 2
    assert "+0.70 (untested: 1 seed)" in md


def test_with_one_seed_everywhere_the_highest_mean_is_best(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_job(sweep, "0", "a", [0.97])
    write_job(sweep, "1", "b", [0.99])
    write_job(sweep, "2", "c", [])
    summary = tables.summarize(tables.collect_runs(sweep)).set_index("pooling")
    assert list(summary["vs_ref"]) == ["untested: 1 seed", "reference", "no ok seeds"]
    assert significance.reference_index(summary) == "b"
    md = tables.to_markdown(summary.reset_index())
    assert "**99.00 ± 0.00**" in md and md.count("**") == 2
    assert "-2.00 (untested: 1 seed)" in md
    assert significance.reference_index(summary[summary["n"] == 0]) is None


def test_an_exact_tie_has_one_best_cell_and_the_other_is_not_separated(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_job(sweep, "0", "first", [0.990, 0.992, 0.994])
    write_job(sweep, "1", "second", [0.990, 0.992, 0.994])
    write_job(sweep, "2", "far", [0.980, 0.982, 0.984])
    summary = tables.summarize(tables.collect_runs(sweep)).set_index("pooling")
    assert list(summary["vs_ref"]) == ["reference", "not separated", "separated"]
    assert summary.loc["second", "delta_vs_ref"] == 0.0
    md = tables.to_markdown(summary.reset_index())
    assert md.count("**99.20 ± 0.20**") == 1 and "99.20 ± 0.20 †" in md and "+0.00 [" in md
    tex = tables.to_latex(summary.reset_index())
    assert tex.count(r"\textbf{") == 1 and r"99.20 $\pm$ 0.20$^\dagger$" in tex


def test_tables_mark_cells_not_separated_from_the_best(summary: pd.DataFrame) -> None:
    frame = summary.reset_index()
    md = tables.to_markdown(frame)
    assert "98.80 ± 0.20 †" in md and "98.20 ± 0.20 †" not in md
    assert "**99.20 ± 0.20**" in md and "not separated" in md and "Holm" in md
    assert "-0.40 [-0.97, +0.17], p=0.070 (not separated)" in md
    assert "-1.70 (untested: 1 seed)" in md
    back = pd.read_csv(io.StringIO(tables.to_csv(frame)))
    assert {"delta_vs_ref", "delta_ci_sim", "p_holm"} <= set(back.columns)
    assert back.set_index("pooling").loc["close", "delta_ci_sim"] == pytest.approx(0.5708, abs=1e-4)
    tex = tables.to_latex(frame)
    assert r"98.80 $\pm$ 0.20$^\dagger$" in tex and r"$\Delta$ test pp" in tex


def test_the_reference_is_chosen_on_validation_not_test(tmp_path: Path) -> None:
    sweep = tmp_path / "s"  # "val" leads on validation, "test" on test accuracy
    write_job(sweep, "0", "test", [0.993, 0.994, 0.995], vals=[0.980, 0.981, 0.982])
    write_job(sweep, "1", "val", [0.990, 0.991, 0.992], vals=[0.990, 0.991, 0.992])
    summary = tables.summarize(tables.collect_runs(sweep)).set_index("pooling")
    assert summary.loc["val", "vs_ref"] == "reference"
    assert summary.loc["test", "delta_vs_ref"] == pytest.approx(0.3)  # its test gain, tested
    assert summary.loc["test", "val_mean"] == pytest.approx(98.1)
    assert significance.reference_index(summary) == "val"
    assert significance.highest_test_index(summary) == "test"
    md = tables.to_markdown(summary.reset_index())
    assert "**99.10 ± 0.10**" in md and md.count("**") == 2
    assert "The highest test mean is pooling=test's (99.40%, validation 98.10%), not the " \
           "reference's, pooling=val (99.10% test, 99.10% validation)" in md
    assert significance.RULE in md and significance.RULE.split(";")[0] in tables.to_latex(
        summary.reset_index()).replace("\n", " ")


def test_no_cell_marked_not_separated_shows_an_interval_excluding_zero() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):  # random tables of 3-9 cells, 2-6 seeds, close means
        cells = int(rng.integers(3, 10))
        n = rng.integers(2, 7, cells)
        summary = pd.DataFrame({
            "n": n, "val_mean": rng.normal(99.0, 0.05, cells),
            "test_mean": rng.normal(99.0, 0.05, cells),
            "test_std": rng.uniform(0.01, 0.1, cells)})
        out = significance.versus_reference(summary)
        tied = out[out["vs_ref"] == "not separated"]
        assert ((tied["delta_vs_ref"] - tied["delta_ci_sim"] <= 0)
                & (tied["delta_vs_ref"] + tied["delta_ci_sim"] >= 0)).all()
        checked += len(tied)
    assert checked > 100  # the property was met often, not vacuously


def test_the_interval_is_welchs_at_the_bonferroni_level_of_the_comparisons() -> None:
    # one clear cell (raw p tiny) and one borderline: 2 comparisons, Bonferroni 97.5%
    summary = pd.DataFrame({"n": [5, 5, 5], "val_mean": [99.5, 99.0, 99.0],
                            "test_mean": [99.5, 99.0, 99.43], "test_std": [0.05] * 3})
    out = significance.versus_reference(summary)
    w = significance.welch(99.43, 0.05, 5, 99.5, 0.05, 5, level=0.975)
    assert out.loc[2, "delta_ci_sim"] == pytest.approx(w["half"])
    assert out.loc[2, "delta_ci_sim"] > significance.welch(99.43, 0.05, 5, 99.5, 0.05, 5)["half"]


def test_seeds_for_80_percent_power_match_cohens_table() -> None:
    # Cohen's d = 0.5, two-sided 5%: 64 per group (Cohen 1988, table 2.4.1; equal std, so Welch's
    # df equals the pooled test's 2(n - 1))
    assert significance.seeds_for_power(0.5, 1.0, 1.0, 0.05) == 64
    assert significance.welch_power(0.5, 1.0, 1.0, 64, 0.05) >= 0.8
    assert significance.welch_power(0.5, 1.0, 1.0, 63, 0.05) < 0.8
    assert significance.seeds_for_power(1.0, 1.0, 1.0, 0.05) == 17  # d = 1: 17 (table 2.4.1)
    assert significance.seeds_for_power(-1.0, 1.0, 1.0, 0.05) == 17  # the sign does not matter
    assert significance.seeds_for_power(1.0, 1.0, 1.0, 0.01) > 17  # a stricter level needs more
    assert math.isnan(significance.seeds_for_power(0.0, 1.0, 1.0, 0.05))
    assert math.isnan(significance.seeds_for_power(1e-9, 1.0, 1.0, 0.05))  # beyond MAX_SEEDS


def test_n_power80_is_given_for_the_cells_not_separated_only(summary: pd.DataFrame) -> None:
    close = summary.loc["close"]  # not separated at the Bonferroni level 0.025 of 2 comparisons
    assert close["n_power80"] == significance.seeds_for_power(-0.4, 0.2, 0.2, 0.025)
    assert close["n_power80"] > 3
    assert pd.isna(summary.loc["far", "n_power80"]) and pd.isna(summary.loc["best", "n_power80"])
    assert pd.isna(summary.loc["single", "n_power80"])
    back = pd.read_csv(io.StringIO(tables.to_csv(summary.reset_index()))).set_index("pooling")
    assert back.loc["close", "n_power80"] == close["n_power80"]


def test_p_values_under_1e_3_read_in_scientific_notation() -> None:
    assert significance.p_text(6.834e-05) == "6.8e-05"
    assert significance.p_text(0.0157) == "0.016" and significance.p_text(0.75) == "0.75"
    assert significance.p_text(0.001) == "0.0010"  # 2 significant digits, trailing zero kept
    assert significance.p_text(0.1) == "0.10" and significance.p_text(1.0) == "1.0"
    frame = pd.DataFrame({"group": ["a"], "p_holm": [6.834e-06], **{
        f"{s}_seeds": [[]] for s in tables.NOT_OK}})
    assert "6.834e-06" in tables.to_csv(frame)  # not 0.0000
