"""experiments.nielsen_table: book vs ours per row, from (possibly stopped) row run dirs."""

import json
from pathlib import Path

import pytest

from experiments import nielsen_table


def fake_row(run_dir: Path, val: list[list[float]], test: list[list[float]], planned: int,
             finished: bool, widths: tuple[int, ...] = (100,), vote: float | None = None,
             seed: int = 0, errors: list | None = None) -> None:
    run_dir.mkdir(parents=True)
    config = {"seed": seed, "train": {"seeds": len(val[0]), "epochs": planned},
              "model": {"dense": [{"units": w, "dropout": None} for w in widths],
                        "num_classes": 10}}
    if errors is not None:
        (run_dir / "test_errors.json").write_text(json.dumps(
            {"images": 10_000, "seeds": list(range(seed, seed + len(val[0]))), "errors": errors}))
    (run_dir / "config.json").write_text(json.dumps(config))
    lines = [json.dumps({"epoch": e + 1, "train_loss": [0.1] * len(v), "val_acc": v,
                         "test_acc": t, "seconds": 60.0})
             for e, (v, t) in enumerate(zip(val, test, strict=True))]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if finished:
        metrics = {"status": "ok"} | ({} if vote is None else {"vote_test_acc": vote})
        (run_dir / "metrics.json").write_text(json.dumps(metrics))


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
    # best-val epochs 2 and 1; no end slope: 2 epochs are fewer than the 3 it is fitted over
    assert got["row1"] == ["97.80%", "97.85% ± 0.07", "97.90%", "+0.10", "2", "2/2", "2 min",
                           "2, 1", "—"]
    assert got["row3"][1:6] == ["98.90% ± 0.10", "99.00%", "-0.06", "3", "1/60 (stopped)"]
    assert got["row2"][1] == "not yet run" and len(got) == 12


def test_a_rows_budget_cells_are_its_seeds_best_val_epochs_and_mean_end_slope(tmp_path):
    # 4 epochs: the slope is fitted over the last 3; seed 0 rises 1 pp per epoch, seed 1 2 pp
    fake_row(tmp_path / "row1", val=[[0.90, 0.90], [0.91, 0.92], [0.92, 0.94], [0.93, 0.96]],
             test=[[0.9, 0.9]] * 4, planned=4, finished=True)
    got = rows(nielsen_table.table(tmp_path))["row1"]
    # mean +1.50 pp / epoch, 95% t half-width t(0.975, 1) * 0.7071 / sqrt(2) = 6.35
    assert got[-2:] == ["4, 4", "+1.500 [-4.853, +7.853]"]


def test_a_row_another_process_trains_reads_training(runs, other_process_holding):
    with other_process_holding(runs / "row3"):
        assert rows(nielsen_table.table(runs))["row3"][5] == "1/60 (training)"
    assert rows(nielsen_table.table(runs))["row3"][5] == "1/60 (stopped)"


def test_a_crashed_run_is_stopped_and_a_diverged_seed_left_out(tmp_path, capsys):
    # row 1 crashed after 1 of 2 epochs (metrics.json: failed); in row 4 seed 1 diverged at epoch 2
    fake_row(tmp_path / "row1", val=[[0.97, 0.98]], test=[[0.970, 0.979]], planned=2,
             finished=False)
    (tmp_path / "row1" / "metrics.json").write_text(json.dumps({"status": "failed"}))
    fake_row(tmp_path / "row4", val=[[0.99, 0.99], [0.991, None]], test=[[0.990, 0.995],
             [0.991, None]], planned=2, finished=True)
    got = rows(nielsen_table.table(tmp_path))
    assert got["row1"][5] == "1/2 (stopped)"
    assert got["row4"][1:5] == ["99.10% (1 seed)", "99.10%", "-0.13", "1 (1 diverged, left out)"]
    fake_row(tmp_path / "row5", val=[[None, None]], test=[[None, None]], planned=2,
             finished=True)
    assert got["row5"][0] != "every seed diverged"
    assert rows(nielsen_table.table(tmp_path))["row5"][1:5] == ["every seed diverged", "", "",
                                                                 "2"]
    (tmp_path / "row4" / "config.json").write_text("{")  # unreadable: one line, exit 2
    assert nielsen_table.main([str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "JSONDecodeError" in line


def test_out_replaces_only_the_table_and_keeps_the_prose(runs, tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\nintro\n\n| row | book | old |\n|---|---|---|\n| row1 | x | y |\n"
                   "\nafter the table\n")
    assert nielsen_table.main([str(runs), "--out", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Title\n\nintro\n\n| row | book | ours")
    assert text.endswith("| row9 | 99.67% | not yet run | | | | | | | |\n\nafter the table\n")
    assert "| row1 | x | y |" not in text and "97.85% ± 0.07" in capsys.readouterr().out


def test_missing_runs_dir_is_a_one_line_error(tmp_path, capsys):
    assert nielsen_table.main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_width_sweeps_give_one_line_per_variant(tmp_path):
    fake_row(tmp_path / "row6" / "0", val=[[0.99]], test=[[0.9940]], planned=60, finished=True,
             widths=(300,))
    fake_row(tmp_path / "row6" / "1", val=[[0.99]], test=[[0.9950]], planned=60, finished=False,
             widths=(1000,))
    fake_row(tmp_path / "row7" / "2", val=[[0.99]], test=[[0.9930]], planned=60, finished=True,
             widths=(1000, 1000))
    got = rows(nielsen_table.table(tmp_path))
    assert got["row6 FC300"][1:4] == ["99.40% (1 seed)", "99.40%", "-0.06"]
    assert got["row6 FC1000"][1:4] == ["99.50% (1 seed)", "99.50%", "+0.07"]
    assert got["row6 FC1000"][5] == "1/60 (stopped)"
    assert got["row7 1000+1000"][0:4] == ["99.47%", "99.30% (1 seed)", "99.30%", "-0.17"]
    assert got["row7 100+100"][1] == "not yet run"


def test_row8_from_the_first_three_seeds_of_row9_and_row9_vote_errors(tmp_path):
    # 5 nets, one epoch each: test 99.50 / 99.60 / 99.70 / 99.00 / 99.10; vote 99.64% = 36 errors
    fake_row(tmp_path / "row9", val=[[0.99] * 5], test=[[0.995, 0.996, 0.997, 0.990, 0.991]],
             planned=40, finished=True, widths=(1000, 1000), vote=0.9964)
    got = rows(nielsen_table.table(tmp_path))
    assert got["row8"] == ["99.60%", "99.60% ± 0.10", "99.70%", "+0.10",
                           "3 (seeds 0-2 of row9's run)", "1/40", "in row9's run", "1, 1, 1", "—"]
    assert got["row9"][1] == "vote 99.64% (36 errors; book 33); nets 99.38% ± 0.31"
    assert got["row9"][2:5] == ["99.70%", "-0.03 (vote)", "5"]


def test_a_row8_run_of_its_own_wins_and_an_unfinished_row9_has_no_vote(tmp_path):
    fake_row(tmp_path / "row8", val=[[0.99]], test=[[0.9950]], planned=40, finished=False)
    fake_row(tmp_path / "row9", val=[[0.99] * 5], test=[[0.995, 0.996, 0.997, 0.990, 0.991]],
             planned=40, finished=False)
    (tmp_path / "row5").mkdir()
    (tmp_path / "row5" / "config.json").write_text(json.dumps({"seed": 0}))
    got = rows(nielsen_table.table(tmp_path))
    assert got["row8"][1] == "99.50% (1 seed)" and got["row8"][4] == "1 of 3"
    assert got["row9"][1] == "nets 99.38% ± 0.31; vote when finished" and got["row9"][3] == ""
    assert got["row5"][1] == "started, no epoch finished"


# the test errors of 5 nets; the vote: image 1 (label 3) 5,5,8,5,3 -> 5, wrong; image 2 (label 7)
# 1,7,1,1,7 -> 1, wrong; images 5 and 9: one net wrong each, the vote right -> 2 errors, 99.98%
NET_ERRORS = [[[1, 3, 5], [2, 7, 1]], [[1, 3, 5], [9, 4, 9]], [[1, 3, 8], [2, 7, 1]],
              [[1, 3, 5], [2, 7, 1], [5, 0, 6]], []]
NET_TESTS = [0.995, 0.996, 0.997, 0.990, 0.991]


def row8_sweep(runs: Path, finished=(True,) * 5, errors=True) -> None:
    """Row 8 as a sweep of 5 one-net jobs, job i training seed 4 - i (the seeds out of order)."""
    for job in range(5):
        seed = 4 - job
        fake_row(runs / "row8" / str(job), val=[[0.99]], test=[[NET_TESTS[seed]]], planned=40,
                 finished=finished[job], widths=(1000, 1000), seed=seed,
                 errors=[NET_ERRORS[seed]] if errors else None)


def test_row8_is_its_first_three_nets_by_seed_and_row9_their_vote_from_the_test_errors(tmp_path):
    row8_sweep(tmp_path)
    got = rows(nielsen_table.table(tmp_path))
    assert got["row8"] == ["99.60%", "99.60% ± 0.10", "99.70%", "+0.10", "3", "1/40", "3 min",
                           "1, 1, 1", "—"]
    assert got["row9"] == ["99.67%", "vote 99.98% (2 errors; book 33); nets 99.38% ± 0.31",
                           "99.70%", "+0.31 (vote)", "5 (seeds 0-4 of row8's runs)", "1/40",
                           "5 min", "1, 1, 1, 1, 1", "—"]  # the time: every net of its runs


def test_row9_from_row8_runs_has_no_vote_when_a_net_has_no_test_errors(tmp_path):
    row8_sweep(tmp_path, errors=False)
    got = rows(nielsen_table.table(tmp_path))
    assert got["row9"][1] == "nets 99.38% ± 0.31; vote when finished"
    assert got["row9"][4] == "5 (seeds 0-4 of row8's runs)"


def test_row9_from_row8_runs_votes_only_when_every_net_finished(tmp_path):
    row8_sweep(tmp_path, finished=(False, True, True, True, True))  # seed 4 (job 0) stopped
    got = rows(nielsen_table.table(tmp_path))
    # the finished nets, seeds 0-3: 99.50 / 99.60 / 99.70 / 99.00 -> 99.45% ± 0.31
    assert got["row9"][1] == "nets 99.45% ± 0.31; vote when finished"
    assert got["row9"][4] == "4 of 5 (seeds 0-3 of row8's runs; seed 4: 1/40 stopped)"
    # row 8's nets (seeds 0-2: jobs 4, 3, 2) all finished
    assert got["row8"][4:6] == ["3", "1/40"]


def test_a_line_of_one_net_jobs_is_its_finished_nets_while_others_train(
        tmp_path, other_process_holding):
    # row 8: seeds 0 and 1 finished 40 epochs; seed 2 in its first epoch, far below them
    common = {"planned": 40, "widths": (1000, 1000)}
    for seed, test in ((0, 0.9955), (1, 0.9953)):
        fake_row(tmp_path / "row8" / str(seed), val=[[0.99]] * 40, test=[[test]] * 40,
                 finished=True, seed=seed, **common)
    fake_row(tmp_path / "row8" / "2", val=[[0.98]], test=[[0.9810]], finished=False, seed=2,
             **common)
    with other_process_holding(tmp_path / "row8" / "2"):
        got = rows(nielsen_table.table(tmp_path))
    assert got["row8"] == ["99.60%", "99.54% ± 0.01", "99.55%", "-0.05",
                           "2 of 3 (seed 2: 1/40 training)", "40/40", "80 min", "1, 1",
                           "+0.000 [+0.000, +0.000]"]  # flat validation: slope 0, no spread
    assert got["row9"][4] == "2 of 5 (seeds 0-1 of row8's runs; seed 2: 1/40 training)"
    got = rows(nielsen_table.table(tmp_path))  # no process holds it: stopped
    assert got["row8"][4] == "2 of 3 (seed 2: 1/40 stopped)"
    for seed in (0, 1):  # no net finished: the line is every net's, at the fewest epochs
        (tmp_path / "row8" / str(seed) / "metrics.json").unlink()
    got = rows(nielsen_table.table(tmp_path))
    assert got["row8"][1] == "99.06% ± 0.83" and got["row8"][4:6] == ["3", "1/40 (stopped)"]


def test_row9_needs_five_nets_for_its_vote(tmp_path):
    row8_sweep(tmp_path)
    for job in ("3", "4"):  # seeds 1 and 0 never started
        for name in ("metrics.jsonl", "metrics.json", "test_errors.json"):
            (tmp_path / "row8" / job / name).unlink()
    got = rows(nielsen_table.table(tmp_path))
    assert got["row9"][1] == "nets 99.27% ± 0.38; vote when finished"
    assert got["row9"][4] == "3 of 5 (seeds 2-4 of row8's runs)"
    assert got["row8"][4] == "3 (seeds 2-4)"  # row 8 says which seeds it is when not 0-2


def test_the_vote_takes_each_chosen_nets_errors_from_runs_of_several_nets(tmp_path):
    # row 8 as two runs: seeds 0-2 and 3-5; row 9 votes seeds 0-4, each with its own errors (a
    # vote with seed 5, right everywhere, in place of seed 0, 1, 2 or 3 has fewer errors)
    common = {"planned": 40, "finished": True, "widths": (1000, 1000)}
    fake_row(tmp_path / "row8" / "0", val=[[0.99] * 3], test=[NET_TESTS[:3]], seed=0,
             errors=NET_ERRORS[:3], **common)
    fake_row(tmp_path / "row8" / "1", val=[[0.99] * 3], test=[[*NET_TESTS[3:], 0.99]], seed=3,
             errors=[*NET_ERRORS[3:], []], **common)
    got = rows(nielsen_table.table(tmp_path))
    assert got["row9"][1] == "vote 99.98% (2 errors; book 33); nets 99.38% ± 0.31"
    assert got["row9"][6] == "in row8's runs"  # 5 of the runs' 6 nets: no time of its own


def test_rows_without_a_run_dir_keep_their_published_line(runs, tmp_path):
    doc = tmp_path / "doc.md"
    assert nielsen_table.main([str(runs), "--out", str(doc)]) == 0
    first = doc.read_text()
    published = ("| row2 | 98.78% | 98.70% ± 0.05 | 98.75% | -0.03 | 3 | 32/60 (stopped) | "
                 "70 min |")
    doc.write_text(first.replace("| row2 | 98.78% | not yet run | | | | | |", published)
                   .replace("| row1 |", "| row1 | stale |", 1))
    other = tmp_path / "other_runs"  # holds row 3 only, now finished with a better seed
    fake_row(other / "row3", val=[[0.99, 0.99]], test=[[0.991, 0.992]], planned=1, finished=True)
    assert nielsen_table.main([str(other), "--out", str(doc)]) == 0
    got = rows(doc.read_text())
    assert doc.read_text().count(published) == 1  # kept: no row2 dir under other_runs
    assert got["row3"][1:6] == ["99.15% ± 0.07", "99.20%", "+0.14", "2", "1/1"]  # rewritten
    assert got["row1"][1] == "not yet run"  # a line of another layout is not kept
    assert got["row4"][1] == "not yet run" and len(got) == 12


def test_readme_table_one_line_per_book_row() -> None:
    from experiments.nielsen_table import HEADER, readme_table

    made = "\n".join([
        HEADER, "|" + "---|" * 10,
        "| row1 | 97.80% | 97.74% ± 0.03 | 97.77% | -0.03 | 3 | 60/60 | 10 min | 45, 60, 45 | "
        "+0.000 [-0.005, +0.006] |",
        "| row4 | 99.23% | not yet run | | | | | | | |",
        "| row6 FC300 | 99.46% | 99.42% (1 seed) | 99.42% | -0.04 | 1 | 60/60 | 40 min | 31 | "
        "-0.001 |",
        "| row6 FC1000 | 99.43% | 99.44% (1 seed) | 99.44% | +0.01 | 1 | 60/60 | 45 min | 41 | "
        "-0.002 |",
        "| row9 | 99.67% | vote 99.63% (37 errors; book 33); nets 99.54% ± 0.02 | 99.57% | "
        "-0.04 (vote) | 5 (seeds 0-4 of row8's runs) | 40/40 | 438 min | 31, 40, 35, 39, 26 | "
        "+0.001 [-0.003, +0.006] |"]) + "\n"
    lines = readme_table(made).splitlines()
    assert lines[2] == "| 1 | FC100, sigmoid | 97.80% | 97.77% | 97.74% ± 0.03 |"
    assert lines[3] == "| 4 | row 3 with ReLU and L2 | 99.23% | not yet run | |"
    assert lines[4] == ("| 6 | row 5 with FC300 / FC1000 | 99.46% / 99.43% | FC300 99.42%, "
                        "FC1000 99.44% (1 seed each, 60/60 epochs) | |")
    assert lines[5] == ("| 9 | plurality vote of 5 row-8 nets | 99.67% (33 errors) | 99.63% "
                        "(37 errors) | the 5 nets 99.54% ± 0.02 |")


def test_readme_block_is_replaced_between_its_markers_only() -> None:
    from experiments.nielsen_table import README_BEGIN, README_END, replace_readme_block

    doc = f"intro\n{README_BEGIN}\nold\n{README_END}\nafter\n"
    want = f"intro\n{README_BEGIN}\nnew\n{README_END}\nafter\n"
    assert replace_readme_block(doc, "new\n") == want
    with pytest.raises(ValueError, match="README.md: no <!-- results:begin -->"):
        replace_readme_block("no markers\n", "new\n", "README.md")
