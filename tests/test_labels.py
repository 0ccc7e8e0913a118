"""Cells named from the experiment file's `labels:` in the tables and figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnn_jax.results import labels, tables
from experiments.table import write_outputs


def _job(sweep: Path, name: str, overrides: list[str], accs: list[float]) -> None:
    per_seed = [{"seed": i, "status": "ok", "best_val_epoch": 2, "val_acc": a, "test_acc": a,
                 "last_test_acc": a, "final_train_loss": 0.1} for i, a in enumerate(accs)]
    (sweep / name).mkdir(parents=True)
    (sweep / name / "metrics.json").write_text(json.dumps({
        "status": "ok", "overrides": overrides, "per_seed": per_seed, "seconds": 1.0}))


def _conf(root: Path, text: str) -> Path:
    (root / "experiment").mkdir(parents=True)
    (root / "experiment" / "abl.yaml").write_text(text)
    return root


def test_read_labels_by_key_and_value_text(tmp_path: Path) -> None:
    conf = _conf(tmp_path / "conf", "# @package _global_\nlabels:\n"
                 "  model: {fc30: 784-30}\n  data.expand: {false: 50k, true: expanded}\n"
                 "  dropout: {0.5: half}\n")
    found = labels.read_labels("abl", conf)
    assert found == {"model": {"fc30": "784-30"}, "data.expand": {"false": "50k",
                                                                   "true": "expanded"},
                     "dropout": {"0.5": "half"}}
    assert labels.value_label("data.expand", "False", found) == "50k"  # YAML false, Hydra False
    assert labels.value_label("dropout", "0.5", found) == "half"
    assert labels.value_label("model", "nielsen_fc", found) == "model=nielsen_fc"  # unnamed
    assert labels.value_label("model", "nielsen_fc", found, keyed=False) == "nielsen_fc"
    cell = {"model": "fc30", "data.expand": "True", "dropout": None}
    assert labels.cell_label(cell, ["model", "data.expand", "dropout"], found) == \
        "784-30, expanded"
    assert labels.read_labels("missing", conf) == {} and labels.read_labels(None, conf) == {}


def test_labels_that_are_not_a_mapping_of_mappings_are_a_one_line_error(tmp_path: Path) -> None:
    conf = _conf(tmp_path / "conf", "labels: [a, b]\n")
    with pytest.raises(ValueError, match=r"abl.yaml: labels must map each swept key to"):
        labels.read_labels("abl", conf)


@pytest.mark.parametrize("experiment", ["ablation_dropout", "ablation_pooling",
                                        "ablation_stride", "cnn_vs_fc"])
def test_every_swept_value_of_the_ablations_has_a_label(experiment: str) -> None:
    import yaml

    text = (labels.CONF_DIR / "experiment" / f"{experiment}.yaml").read_text()
    swept = yaml.safe_load(text)["hydra"]["sweeper"]["params"]
    named = labels.read_labels(experiment)
    for key, values in swept.items():
        for value in str(values).split(","):
            assert labels.value_label(key, value, named) != f"{key}={value}", (key, value)


def test_tables_and_figure_name_the_cells_from_the_experiment_file(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"  # cnn_vs_fc's labels: the nets as its README names them
    _job(sweep, "0", ["experiment=cnn_vs_fc", "model=fc30"], [0.96, 0.97])
    _job(sweep, "1", ["experiment=cnn_vs_fc", "model=nielsen_fc"], [0.98, 0.979])
    markdown, _ = write_outputs(sweep, tmp_path / "out", "t")
    assert "| 784-30 " in markdown and "| 784-100 " in markdown and "fc30" not in markdown
    csv = (tmp_path / "out" / "table.csv").read_text()
    assert "784-100" in csv.splitlines()[2] and csv.splitlines()[0].count("label") == 1
    assert "784-30" in (tmp_path / "out" / "table.tex").read_text()


def test_the_pivot_names_rows_and_columns(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for i, (d, e) in enumerate([("0.0", "False"), ("0.0", "True"), ("0.5", "False"),
                                ("0.5", "True")]):
        _job(sweep, str(i), ["experiment=abl", f"dropout={d}", f"data.expand={e}"],
             [0.99 + i / 1000, 0.991 + i / 1000])
    named = {"dropout": {"0.0": "no dropout"}, "data.expand": {"true": "expanded"}}
    summary = tables.summarize(tables.collect_runs(sweep), named)
    assert list(summary["label"]) == ["no dropout, data.expand=False", "no dropout, expanded",
                                      "dropout=0.5, data.expand=False", "dropout=0.5, expanded"]
    pivot = tables.pivot_markdown(summary, ("dropout", "data.expand"), named)
    assert "| no dropout " in pivot and "| 0.5 " in pivot and "| expanded " in pivot
    assert "| False " in pivot


def test_a_label_shows_a_number_to_four_significant_digits_the_csv_keeps_it_whole():
    from cnn_jax.results.labels import short_number, value_label

    assert value_label("optimizer.lr", "0.007247031607588867", {}) == "optimizer.lr=0.007247"
    assert short_number("0.25") == "0.25" and short_number("1000000") == "1000000"
    assert short_number("123456.7") == "1.235e+05" and short_number("max") == "max"
    assert short_number("nan") == "nan" and short_number(True) == "True"


def test_an_experiment_built_on_another_takes_its_labels_and_may_rename_some(
        tmp_path: Path) -> None:
    conf = _conf(tmp_path / "conf", "# @package _global_\nlabels:\n"
                 "  model: {fc30: 784-30, nielsen_fc: 784-100}\n  dropout: {0.5: half}\n")
    (conf / "experiment" / "check").mkdir()
    (conf / "experiment" / "check" / "abl.yaml").write_text(
        "# @package _global_\ndefaults:\n  - /experiment/abl\nlabels:\n  dropout: {0.5: 50%}\n")
    assert labels.read_labels("check/abl", conf) == {
        "model": {"fc30": "784-30", "nielsen_fc": "784-100"}, "dropout": {"0.5": "50%"}}
