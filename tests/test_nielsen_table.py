"""experiments.nielsen_table: book vs ours per row, from (possibly stopped) row run dirs."""

import json
from pathlib import Path

import pytest

from experiments import nielsen_table


def fake_row(run_dir: Path, val: list[list[float]], test: list[list[float]], planned: int,
             finished: bool) -> None:
    run_dir.mkdir(parents=True)
    config = {"seed": 0, "train": {"seeds": len(val[0]), "epochs": planned}}
    (run_dir / "config.json").write_text(json.dumps(config))
    lines = [json.dumps({"epoch": e + 1, "train_loss": [0.1] * len(v), "val_acc": v,
                         "test_acc": t, "seconds": 60.0})
             for e, (v, t) in enumerate(zip(val, test, strict=True))]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if finished:
        (run_dir / "metrics.json").write_text(json.dumps({"status": "ok"}))


@pytest.fixture
def runs(tmp_path):
    # row 1 finished: seed 0 best val at epoch 2, seed 1 at epoch 1 (first of a tie)
    fake_row(tmp_path / "row1", val=[[0.97, 0.98], [0.98, 0.98]],
             test=[[0.970, 0.979], [0.978, 0.975]], planned=2, finished=True)
    # row 3 stopped after 1 of 60 epochs
    fake_row(tmp_path / "row3", val=[[0.99, 0.985, 0.98]], test=[[0.990, 0.989, 0.988]],
             planned=60, finished=False)
    return tmp_path


def rows(text: str) -> dict[str, list[str]]:
    return {cells[1].strip(): [c.strip() for c in cells[2:-1]]
            for cells in (line.split("|") for line in text.splitlines()[2:])}


def test_rows_report_best_validation_test_accuracy_mean_std_best_and_gap(runs):
    got = rows(nielsen_table.table(runs))
    # row 1: seed 0 -> 97.80 (epoch 2), seed 1 -> 97.90 (epoch 1): mean 97.85, std 0.07
    assert got["row1"] == ["97.80%", "97.85% ± 0.07", "97.90%", "+0.10", "2", "2/2", "2 min"]
    assert got["row3"][1:6] == ["98.90% ± 0.10", "99.00%", "-0.06", "3", "1/60 (stopped)"]
    assert got["row2"][1] == "not yet run" and len(got) == 9


def test_out_replaces_only_the_table_and_keeps_the_prose(runs, tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\nintro\n\n| row | book | old |\n|---|---|---|\n| row1 | x | y |\n"
                   "\nafter the table\n")
    assert nielsen_table.main([str(runs), "--out", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Title\n\nintro\n\n| row | book | ours")
    assert text.endswith("| row9 | 99.67% | not yet run | | | | | |\n\nafter the table\n")
    assert "| row1 | x | y |" not in text and "97.85% ± 0.07" in capsys.readouterr().out


def test_missing_runs_dir_is_a_one_line_error(tmp_path, capsys):
    assert nielsen_table.main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
