"""Each cell vs the best: Welch interval and Holm-corrected p-values, checked against values worked
out here from the textbook formulas on a small fake sweep."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from cnn_jax.results import significance, tables

T975_DF4 = 2.7764  # Student t(0.975, 4), from a printed table


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


def write_job(sweep: Path, name: str, pooling: str, accs: list[float]) -> None:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"pooling={pooling}", f"train.seeds={len(accs)}"]
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    per_seed = [{"seed": i, "status": "ok", "best_val_epoch": 3, "val_acc": a, "test_acc": a,
                 "last_test_acc": a, "final_train_loss": 0.1} for i, a in enumerate(accs)]
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
    assert close["delta_vs_best"] == pytest.approx(-0.4)
    assert close["delta_ci95"] == pytest.approx(T975_DF4 * se, abs=1e-4)  # 0.4534
    assert far["delta_ci95"] == pytest.approx(T975_DF4 * se, abs=1e-4)
    # Holm over 2 tests: the smaller p doubled, the larger one kept (it is larger than that)
    assert far["p_holm"] == pytest.approx(2 * p_far, rel=1e-6)
    assert close["p_holm"] == pytest.approx(max(p_close, 2 * p_far), rel=1e-6)
    assert (close["vs_best"], far["vs_best"]) == ("not separated", "separated")
    best = summary.loc["best"]
    assert (best["vs_best"], best["delta_vs_best"]) == ("best", 0.0)
    assert math.isnan(best["p_holm"]) and math.isnan(best["delta_ci95"])


def test_one_seed_and_failed_cells_are_untested_not_nan_crashes(summary: pd.DataFrame) -> None:
    single, failed = summary.loc["single"], summary.loc["failed"]
    assert single["vs_best"] == "untested: 1 seed"
    assert single["delta_vs_best"] == pytest.approx(97.5 - 99.2)
    assert math.isnan(single["delta_ci95"]) and math.isnan(single["p_holm"])
    assert failed["vs_best"] == "no ok seeds" and math.isnan(failed["delta_vs_best"])


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
    assert list(summary["vs_best"]) == ["untested: 1 seed", "best", "separated"]
    assert summary.loc["lucky", "delta_vs_best"] == pytest.approx(99.9 - 99.2)
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
    assert list(summary["vs_best"]) == ["untested: 1 seed", "best", "no ok seeds"]
    assert significance.best_index(summary) == "b"
    md = tables.to_markdown(summary.reset_index())
    assert "**99.00 ± 0.00**" in md and md.count("**") == 2
    assert "-2.00 (untested: 1 seed)" in md
    assert significance.best_index(summary[summary["n"] == 0]) is None


def test_an_exact_tie_has_one_best_cell_and_the_other_is_not_separated(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_job(sweep, "0", "first", [0.990, 0.992, 0.994])
    write_job(sweep, "1", "second", [0.990, 0.992, 0.994])
    write_job(sweep, "2", "far", [0.980, 0.982, 0.984])
    summary = tables.summarize(tables.collect_runs(sweep)).set_index("pooling")
    assert list(summary["vs_best"]) == ["best", "not separated", "separated"]
    assert summary.loc["second", "delta_vs_best"] == 0.0
    md = tables.to_markdown(summary.reset_index())
    assert md.count("**99.20 ± 0.20**") == 1 and "99.20 ± 0.20 †" in md and "+0.00 [" in md
    tex = tables.to_latex(summary.reset_index())
    assert tex.count(r"\textbf{") == 1 and r"99.20 $\pm$ 0.20$^\dagger$" in tex


def test_tables_mark_cells_not_separated_from_the_best(summary: pd.DataFrame) -> None:
    frame = summary.reset_index()
    md = tables.to_markdown(frame)
    assert "98.80 ± 0.20 †" in md and "98.20 ± 0.20 †" not in md
    assert "**99.20 ± 0.20**" in md and "not separated" in md and "Holm" in md
    assert "-0.40 [-0.85, +0.05], p=0.07 (not separated)" in md
    assert "-1.70 (untested: 1 seed)" in md
    back = pd.read_csv(io.StringIO(tables.to_csv(frame)))
    assert {"delta_vs_best", "delta_ci95", "p_holm"} <= set(back.columns)
    assert back.set_index("pooling").loc["close", "delta_ci95"] == pytest.approx(0.4534, abs=1e-4)
    tex = tables.to_latex(frame)
    assert r"98.80 $\pm$ 0.20$^\dagger$" in tex and r"$\Delta$ pp" in tex
