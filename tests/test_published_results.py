"""Every published table regenerates byte for byte from the records kept in docs/results/runs/.

No training: the ablation tables, their CSV, LaTeX and figure (`experiments.table`), Nielsen's
table (`experiments.nielsen_table`; a row without kept records keeps its published line) and the
README's results block are written into a temp dir from the kept records and compared with what
is published. An ablation is checked once the records of all its jobs are kept
(docs/results/runs/<name>/<job>).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import nielsen_table
from experiments.reproduce import ABLATIONS, steps_of
from experiments.table import write_outputs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "results"
KEPT = DOCS / "runs"
OUTPUTS = ("table.md", "table.csv", "table.tex", "ablation.png")


def sweep_of(name: str) -> str:
    """The experiment (and sweep dir under the runs dir) of a result's one step: its own name
    for an ablation, `budget_check/<ablation>` for `<ablation>/budget_check`."""
    (step,) = steps_of(name)[0][1]
    return step.run_dir


def complete(name: str) -> bool:
    """Whether every job of the ablation's sweep has its finished record kept (a sweep kept job
    by job while it trains again is checked once its last job lands)."""
    from experiments.compose import sweep_jobs

    where = KEPT / sweep_of(name)
    kept = [d for d in where.iterdir() if (d / "metrics.json").is_file()] if where.is_dir() else []
    return len(kept) == len(sweep_jobs(f"experiment={sweep_of(name)}"))


KEPT_ABLATIONS = [name for name in ABLATIONS if complete(name)]
BUDGET_CHECKS = [name for name in ABLATIONS if name.endswith("/budget_check")]


def test_every_published_table_has_all_its_records_kept() -> None:
    # a table whose records went missing would drop out of the byte check below, not fail it
    published = [name for name in ABLATIONS if (DOCS / name / "table.csv").is_file()]
    ablations = {"ablation_pooling", "ablation_stride", "ablation_dropout", "cnn_vs_fc"}
    assert ablations <= set(published)
    assert [name for name in published if name not in KEPT_ABLATIONS] == []


@pytest.mark.parametrize("name", KEPT_ABLATIONS)
def test_an_ablation_table_regenerates_from_its_kept_records(name: str, tmp_path: Path) -> None:
    write_outputs(KEPT / sweep_of(name), tmp_path, f"Ablation: {name}")
    for output in OUTPUTS:
        assert (tmp_path / output).read_bytes() == (DOCS / name / output).read_bytes(), (
            f"docs/results/{name}/{output} differs from what its kept records give: "
            f"python -m experiments.table docs/results/runs/{sweep_of(name)} --out "
            f"docs/results/{name} --title 'Ablation: {name}'")


def test_a_budget_check_trains_twice_its_ablations_epochs_with_at_least_5_seeds() -> None:
    from experiments.compose import compose_dictconfig

    assert {name.split("/")[0] for name in BUDGET_CHECKS} >= {"ablation_stride", "cnn_vs_fc",
                                                              "ablation_dropout",
                                                              "ablation_pooling"}
    for name in BUDGET_CHECKS:
        ablation = name.split("/")[0]
        base = compose_dictconfig(f"experiment={ablation}")
        check = compose_dictconfig(f"experiment={sweep_of(name)}")
        assert check.train.epochs == 2 * base.train.epochs and check.train.seeds >= 5


def _cells(overrides: list[str]) -> frozenset[str]:
    return frozenset(o.strip() for o in overrides if not o.strip().startswith("experiment="))


@pytest.mark.parametrize("name", BUDGET_CHECKS)
def test_a_published_budget_check_trains_its_ablations_reference_and_two_closest_cells(
        name: str) -> None:
    import pandas as pd

    from experiments.compose import sweep_jobs

    ablation = name.split("/")[0]
    base = pd.read_csv(DOCS / ablation / "table.csv")
    closest = base.sort_values("val_mean", ascending=False)["group"][:3]
    trained = {_cells(job) for job in sweep_jobs(f"experiment={sweep_of(name)}")}
    assert {_cells(group.split(",")) for group in closest} <= trained
    check = pd.read_csv(DOCS / name / "table.csv")  # published, with 5 seeds in every cell
    assert len(check) == len(trained) and (check["n"] >= 5).all()


def test_every_nielsen_row_has_its_kept_record() -> None:
    # rows 1-8 each from its own runs (rows 6-8: one per width or net), row 9 (the vote) from
    # row 8's test errors
    for n in range(1, 9):
        assert list((KEPT / "nielsen" / f"row{n}").glob("**/metrics.json")), f"row{n}"
    assert list((KEPT / "nielsen" / "row8").glob("*/test_errors.json"))
    assert "record lost" not in (DOCS / "nielsen_ch6.md").read_text()


def test_nielsen_table_and_readme_block_regenerate_from_the_kept_records() -> None:
    published = (DOCS / "nielsen_ch6.md").read_text()
    made = nielsen_table.table(KEPT / "nielsen", nielsen_table.published_rows(published))
    assert nielsen_table.replace_table(published, made) == published, (
        "docs/results/nielsen_ch6.md differs from what the kept records give: python -m "
        "experiments.nielsen_table docs/results/runs/nielsen --out docs/results/nielsen_ch6.md "
        "--readme README.md")
    readme = (ROOT / "README.md").read_text()
    block = nielsen_table.readme_table(made)
    assert nielsen_table.replace_readme_block(readme, block) == readme, (
        "README.md's results block differs from the Nielsen table's")


@pytest.mark.parametrize("name", KEPT_ABLATIONS)
def test_a_kept_ablations_csv_has_its_reference_at_the_highest_validation_mean(name: str) -> None:
    import pandas as pd

    table = pd.read_csv(DOCS / name / "table.csv")
    assert {"val_mean", "n_power80", "delta_ci_sim", "p_holm", "label"} <= set(table.columns)
    (ref,) = table.index[table["vs_ref"] == "reference"]
    assert table.loc[ref, "val_mean"] == table["val_mean"].max()
    tied = table[table["vs_ref"] == "not separated"]
    assert (tied["n_power80"] > 0).all()  # every cell not separated says how many seeds would do
    assert ((tied["delta_vs_ref"] - tied["delta_ci_sim"] <= 0)
            & (tied["delta_vs_ref"] + tied["delta_ci_sim"] >= 0)).all()
