"""Sweep dir -> runs -> summary -> md / csv / tex / png, on hand-written fake sweeps."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from cnn_jax.results import ablation_figure, rundir, tables
from cnn_jax.results.records import failure_record, write_json_atomic
from experiments.callbacks import WriteTableCallback
from experiments.table import main as table_main

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("table.md", "table.csv", "table.tex", "ablation.png")
MAX_SIG = "activation=sigmoid, pooling=max"


def _seed(seed: int, acc: float | None, status: str = "ok", **extra) -> dict:
    return {"seed": seed, "status": status, "best_val_epoch": 3, "val_acc": acc,
            "test_acc": acc, "last_test_acc": None if acc is None else acc - 0.001,
            "final_train_loss": 0.1, **extra}


def _job(sweep: Path, name: str, overrides: list[str], per_seed: list[dict] | None,
         val_history: list[list[float | None]] = (), **record) -> None:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if per_seed is not None:
        status = "ok" if all(s["status"] == "ok" for s in per_seed) else "diverged"
        metrics = {"status": status, "error": None if status == "ok" else "loss is nan at epoch 2",
                   "overrides": overrides, "per_seed": per_seed, "params": 23550,
                   "flops_per_image": 47000, "seconds": 6.0 * len(per_seed),
                   "compile_seconds": 2.0, **record}
        (job / "metrics.json").write_text(json.dumps(metrics))
    lines = [json.dumps({"epoch": e, "val_acc": v}) + "\n" for e, v in enumerate(val_history, 1)]
    (job / "metrics.jsonl").write_text("".join(lines))


def make_sweep(root: Path) -> Path:
    """A pooling x activation sweep: 3 single-seed jobs, a train.seeds=3 job, a crash, n=1."""
    sweep = root / "multirun"
    for i, acc in enumerate((0.98, 0.99, 1.00)):
        _job(sweep, str(i), ["pooling=max", "activation=sigmoid", f"seed={i}"], [_seed(i, acc)])
    _job(sweep, "3", ["pooling=l2", "activation=relu", "train.seeds=3",
                             "train.resume=true"],
         [_seed(0, 0.985, best_val_epoch=4), _seed(1, None, "diverged"), _seed(2, 0.987)],
         [[0.5, 0.5, 0.5], [0.97, 0.9, 0.95], [0.96, None, 0.97], [0.98, None, 0.97]], epochs=4)
    _job(sweep, "4", ["pooling=max", "activation=relu", "seed=0"], None)
    _job(sweep, "10", ["pooling=l2", "activation=sigmoid", "seed=0", "hydra.verbose=true"],
         [_seed(0, 0.97)])
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """The fake sweep in a fresh temp dir."""
    return make_sweep(tmp_path)


def test_collect_runs_one_row_per_job_and_seed(sweep: Path) -> None:
    runs = tables.collect_runs(sweep)
    assert list(runs["job"]) == ["0", "1", "2", "3", "3", "3", "4", "10"]
    assert {"pooling", "activation"} <= set(runs.columns)
    assert "seed=0" not in " ".join(runs["group"]) and "hydra" not in " ".join(runs["group"])
    assert "resume" not in " ".join(runs["group"])  # run control does not define a configuration
    assert runs["group"].iloc[0] == MAX_SIG
    crash = runs[runs["job"] == "4"].iloc[0]
    assert (crash["status"], crash["seed"]) == ("unfinished", 0)  # no metrics.json: no failure
    assert crash["error"] == (
        "no epoch recorded yet: not started, in its first epoch, or killed before it")
    multi = runs[runs["job"] == "3"]
    assert list(multi["status"]) == ["ok", "diverged", "ok"]
    assert multi["error"].iloc[1] == "loss is nan at epoch 2"
    # a seed's share of the run's time, its compile left out: (18 - 2) / 3
    assert multi["seconds"].iloc[0] == 18.0 and multi["compile_seconds"].iloc[0] == 2.0
    assert multi["seconds_per_seed"].iloc[0] == pytest.approx(16.0 / 3)
    # each seed's own slope over the last 3 of its 4 epochs, in per_seed's order
    slopes = list(multi["val_slope_last"])
    assert slopes[0] == pytest.approx(0.005) and slopes[2] == pytest.approx(0.01)
    assert pd.isna(slopes[1])  # the diverged seed has no validation accuracy there


def test_summarize_hand_computed_numbers(sweep: Path) -> None:
    summary = tables.summarize(tables.collect_runs(sweep)).set_index("group")
    row = summary.loc[MAX_SIG]
    assert row["n"] == 3 and row["test_mean"] == pytest.approx(99.00)
    assert row["test_std"] == pytest.approx(1.00)
    assert row["test_ci95"] == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)  # 2.48
    assert (row["test_lo"], row["test_hi"]) == pytest.approx((96.5158, 101.4842), abs=1e-3)
    assert (row["test_min"], row["test_max"]) == pytest.approx((98.0, 100.0))
    relu = summary.loc["activation=relu, pooling=l2"]
    assert relu["n"] == 2 and relu["n_runs"] == 3 and relu["diverged_seeds"] == ["1"]
    assert relu["test_mean"] == pytest.approx(98.6)
    # convergence over the ok seeds 0 and 2: best-val epochs 4 and 3 of 4; end slopes +0.5 and
    # +1.0 pp per epoch (the diverged seed's missing values are no part of it), their mean and
    # its 95% t half-width t(0.975, 1) * std / sqrt(2)
    assert relu["best_val_epoch_mean"] == 3.5 and relu["epochs"] == 4
    assert relu["val_slope_mean"] == pytest.approx(0.75)
    assert relu["val_slope_ci95"] == pytest.approx(12.7062 * math.sqrt(0.125) / math.sqrt(2),
                                                   abs=1e-3)
    assert math.isnan(row["val_slope_mean"]) and pd.isna(row["epochs"])  # no history
    assert math.isnan(summary.loc["activation=sigmoid, pooling=l2", "val_slope_ci95"])
    one = summary.loc["activation=sigmoid, pooling=l2"]
    assert one["n"] == 1 and one["test_std"] == 0.0 and math.isnan(one["test_ci95"])
    crashed = summary.loc["activation=relu, pooling=max"]
    assert crashed["n"] == 0 and crashed["unfinished_seeds"] == ["0"]
    assert crashed["failed_seeds"] == [] and relu["unfinished_seeds"] == []
    assert ablation_figure.mean_text(crashed) == "unfinished"
    assert tables.grid_keys(summary.reset_index()) == ("pooling", "activation")


def test_markdown_bold_pivot_and_failures(sweep: Path) -> None:
    runs = tables.collect_runs(sweep)
    md = tables.to_markdown(tables.summarize(runs), runs, "T")
    assert md.startswith("## T")
    assert "**99.00 ± 1.00**" in md and "[96.52, 101.48]" in md
    assert md.count("**99.00") == 2  # main table and pivot
    assert "### pooling × activation" in md and "pooling \\ activation" in md
    assert "loss is nan at epoch 2" in md and "no epoch recorded yet" in md
    assert "diverged: seed 1" in md and "unfinished: seed 0" in md
    assert "### Diverged, failed and unfinished runs" in md
    relu = next(ln for ln in md.splitlines() if ln.startswith("| pooling=l2, activation=relu"))
    assert "| 3.5/4 " in relu and "| +0.750 [-2.427, +3.927] " in relu


def test_csv_and_latex(sweep: Path) -> None:
    runs = tables.collect_runs(sweep)
    summary = tables.summarize(runs)
    back = pd.read_csv(io.StringIO(tables.to_csv(summary)))
    assert back["test_mean"].iloc[0] == pytest.approx(99.0) and len(back) == 4
    tex = tables.to_latex(summary, runs, "under_score")
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\caption{under\_score}" in tex
    assert r"\textbf{99.00 $\pm$ 1.00}" in tex and "no epoch recorded yet" in tex
    assert tables.latex_escape("a_b & 5% #x") == r"a\_b \& 5\% \#x"


def _tabulars(tex: str) -> list[tuple[str, list[str]]]:
    """(column spec, row lines: header and body) of each tabular in a LaTeX table."""
    out = []
    for block in re.findall(r"\\begin\{tabular\}\{(\w+)\}\n(.*?)\\end\{tabular\}", tex, re.S):
        spec, body = block
        rows = [r for r in body.splitlines() if not r.endswith("rule")]
        out.append((spec, rows))
    return out


def test_latex_columns_match_the_spec_and_labels_are_escaped(tmp_path: Path) -> None:
    sweep = tmp_path / "stride"
    for i, (stride, pool) in enumerate([(1, "max"), (1, "max_overlap"), (2, "max"),
                                        (2, "max_overlap")]):
        _job(sweep, str(i), [f"conv_stride={stride}", f"pooling={pool}", "train.seeds=2"],
             [_seed(0, 0.98 + i / 1000), _seed(1, 0.981 + i / 1000)], [[0.9, 0.9], [0.91, 0.9]],
             epochs=2)
    _job(sweep, "extra_runs/0", ["conv_stride=2", "pooling=max_overlap"], None)  # no seed: job
    runs = tables.collect_runs(sweep)
    tex = tables.to_latex(tables.summarize(runs), runs, "stride_ablation")
    (spec, rows), (bad_spec, bad_rows) = _tabulars(tex)
    frame = tables.display_frame(tables.summarize(runs))
    assert len(spec) == frame.shape[1] == 16 and len(bad_spec) == 5
    # configuration, mean ± std, CI, vs reference, min-max, end slope [CI], not ok: text; the
    # rest numbers
    assert spec == "lrrlllrlrrlrrrrl"
    for s, lines in ((spec, rows), (bad_spec, bad_rows)):
        for line in lines:
            assert len(re.findall(r"(?<!\\)&", line)) == len(s) - 1, line
            assert re.search(r"(?<!\\)[_%#]", line) is None, line
    assert r"conv\_stride=1, pooling=max\_overlap & 2/2 &" in tex
    assert r"unfinished: job extra\_runs/0" in tex and r"\caption{stride\_ablation}" in tex
    one = tables.summarize(tables.collect_runs(sweep / "extra_runs"))  # one group: its label
    assert r"conv\_stride=2, pooling=max\_overlap &" in tables.to_latex(one)


def test_runtime_overrides_do_not_split_a_group(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    extras = ([], ["train.concurrent_seeds=2"], ["+train.compile_cache=/tmp/xla"],
              ["train.progress=false", "train.resume=false"], ["logger=csv"],
              ["logger=[csv,mlflow]", "logger.mlflow.run_name=x"], ["hydra.verbose=true"])
    for i, extra in enumerate(extras):
        _job(sweep, str(i), ["pooling=l2", f"seed={i}", *extra], [_seed(i, 0.99)])
    summary = tables.summarize(tables.collect_runs(sweep))
    assert list(summary["group"]) == ["pooling=l2"] and summary["n"].iloc[0] == len(extras)
    assert set(rundir.RUNTIME_KEYS) <= tables.RUN_CONTROL_KEYS
    assert all(not tables.is_group_override(f"{k}=1") for k in rundir.RUNTIME_KEYS)
    assert tables.is_group_override("loggers=1") and tables.is_group_override("train.epochs=3")


def test_ablation_png(sweep: Path, tmp_path: Path) -> None:
    runs = tables.collect_runs(sweep)
    summary = tables.summarize(runs)
    lo, hi = ablation_figure.x_limits(summary)  # zoomed to the seeds and intervals: dots
    assert 90.0 < lo <= summary["test_min"].min() and summary["test_max"].max() <= hi <= 100.0
    path = ablation_figure.ablation_dots(summary, tmp_path / "fig" / "a.png", runs=runs)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]  # no temp file left
    assert b"Software" not in png and b"atplotlib" not in png  # no version in its metadata
    again = ablation_figure.ablation_dots(summary, tmp_path / "fig" / "b.png", runs=runs)
    assert again.read_bytes() == png  # the same records, the same bytes


@pytest.mark.parametrize("cells", [1, 2, 3, 12])
def test_the_figures_legend_stays_clear_of_its_axes_labels(sweep: Path, cells: int) -> None:
    runs = tables.collect_runs(sweep)
    summary = tables.summarize(runs)
    summary = pd.concat([summary] * cells, ignore_index=True)[:cells]
    fig = ablation_figure.dots_figure(summary, "t", runs)
    fig.canvas.draw()  # lays the labels out
    renderer = fig.canvas.get_renderer()
    (ax,), (legend,) = fig.axes, fig.legends
    under_axes = min(ax.xaxis.label.get_window_extent(renderer).y0,
                     ax.get_tightbbox(renderer).y0)
    assert legend.get_window_extent(renderer).y1 <= under_axes


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.table", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_main_writes_outputs(sweep: Path, tmp_path: Path, capsys) -> None:
    assert table_main([str(sweep), "--out", str(tmp_path / "out"), "--title", "pool x act"]) == 0
    out = capsys.readouterr().out
    assert "## pool x act" in out and "**99.00 ± 1.00**" in out
    for name in OUTPUTS:
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_cli_missing_dir_exits_2(tmp_path: Path) -> None:
    proc = _cli(str(tmp_path / "missing"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and str(tmp_path / "missing") in proc.stderr


def test_cli_empty_dir_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty" / "0").mkdir(parents=True)
    assert table_main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "empty") in err


def test_callback_writes_and_never_raises(sweep: Path, tmp_path: Path, caplog, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:  # after its outputs: the sweep holds a failed job
        WriteTableCallback(title="cb").on_multirun_end(OmegaConf.create({"hydra": {"sweep": {
            "dir": str(sweep)}}}))
    assert exit_.value.code == 1 and " failed" in capsys.readouterr().out
    assert all((sweep / name).stat().st_size > 0 for name in OUTPUTS)
    assert (sweep / "table.md").read_text().startswith("## cb")
    WriteTableCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {
        "dir": str(tmp_path / "missing")}}}))
    WriteTableCallback().on_multirun_end(OmegaConf.create({}))
    assert sum("could not write the ablation table" in r.message for r in caplog.records) == 2


def test_failure_record_and_unreadable_metrics(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_json_atomic(sweep / "0" / "metrics.json",
                      failure_record("ValueError: bad pooling\nTraceback", ["pooling=foo"]))
    (sweep / "1").mkdir()
    (sweep / "1" / "metrics.json").write_text("{")
    runs = tables.collect_runs(sweep)
    assert list(runs["status"]) == ["failed", "failed"] and runs["group"][0] == "pooling=foo"
    assert runs["error"][0] == "ValueError: bad pooling"
    assert runs["error"][1].startswith("unreadable metrics.json")
    summary = tables.summarize(runs)
    assert list(summary["n"]) == [0, 0]
    assert "ValueError: bad pooling" in tables.to_markdown(summary, runs)
    assert ablation_figure.x_limits(summary) == (0.0, 100.0)
    assert [ablation_figure.mean_text(r) for _, r in summary.iterrows()] == ["no ok seeds"] * 2


def test_a_job_without_a_record_yet_is_unfinished_training_or_stopped(
        tmp_path: Path, other_process_holding) -> None:
    sweep = tmp_path / "s"
    _job(sweep, "0", ["pooling=max"], None, [[0.9], [0.95]])
    (sweep / "0" / "config.json").write_text(json.dumps({"train": {"epochs": 8}}))
    (sweep / "0" / "checkpoints" / "2").mkdir(parents=True)  # what a rerun continues from
    _job(sweep, "1", ["pooling=l2"], [_seed(0, 0.99)])
    runs = tables.collect_runs(sweep)
    assert list(runs["status"]) == ["unfinished", "ok"]
    assert runs["error"][0] == "stopped after 2 of 8 epochs (resumable)"
    shutil.rmtree(sweep / "0" / "checkpoints")  # nothing to continue from: its epochs still show
    (error,) = tables.collect_runs(sweep)["error"][:1]
    assert error == "stopped after 2 of 8 epochs (a rerun starts over)"
    assert tables.failures(runs)["seed"].tolist() == ["—"]  # a job's row has no seed: no "nan"
    (sweep / "0" / "checkpoints" / "2").mkdir(parents=True)
    with other_process_holding(sweep / "0") as pid:
        (error,) = tables.collect_runs(sweep)["error"][:1]
    assert error.startswith(f"training (pid {pid} on ") and error.endswith("), 2/8 epochs")
    summary = tables.summarize(runs)
    assert list(summary["unfinished_seeds"]) == [["job 0"], []]  # no seed override: its job
    assert [ablation_figure.mean_text(r) for _, r in summary.iterrows()] == [
        "unfinished", "99.00 (n=1)"]
    assert "unfinished_seeds" in tables.to_csv(summary).splitlines()[0]


def test_an_unfinished_job_counts_every_seed_it_trains(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    _job(sweep, "0", ["pooling=max"], [_seed(s, 0.99) for s in range(3)])
    _job(sweep, "1", ["pooling=l2"], None, [[0.9, 0.9, 0.9]])
    (sweep / "1" / "config.json").write_text(json.dumps({"seed": 0, "train": {"epochs": 8,
                                                                             "seeds": 3}}))
    runs = tables.collect_runs(sweep)
    assert list(runs["seeds_planned"]) == [1, 1, 1, 3]
    summary = tables.summarize(runs)
    assert list(summary["n"]) == [3, 0] and list(summary["n_runs"]) == [3, 3]
    assert list(summary["unfinished_seeds"]) == [[], ["job 1"]]  # one job, its seeds unknown
    assert list(tables.display_frame(summary)["seeds ok"]) == ["3/3", "0/3"]
    (sweep / "1" / "config.json").write_text(json.dumps({"seed": 4, "train": {"epochs": 8,
                                                                             "seeds": 1}}))
    runs = tables.collect_runs(sweep)  # a one-seed job's row is that seed's
    assert runs["seed"].tolist()[-1] == 4 and tables.summarize(runs)["n_runs"].tolist() == [3, 1]


def test_atomic_write_of_text_and_bytes_leaves_only_the_file(tmp_path: Path) -> None:
    from cnn_jax.atomic import write_atomic

    path = write_atomic(tmp_path / "new" / "a.md", "± 1")
    assert path.read_text(encoding="utf-8") == "± 1" and path.stat().st_mode & 0o777 == 0o644
    write_atomic(path, b"\x89PNG")
    with pytest.raises(TypeError):
        write_atomic(path, 3)  # type: ignore[arg-type]
    assert path.read_bytes() == b"\x89PNG" and [p.name for p in path.parent.iterdir()] == ["a.md"]


def test_cli_unreadable_overrides_exit_2_in_one_line(tmp_path: Path, capsys) -> None:
    sweep = make_sweep(tmp_path)
    (sweep / "0" / "metrics.json").unlink()  # a job without a record: its labels come from .hydra
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text("- [unclosed\n  - x: {\n")
    assert table_main([str(sweep), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_a_jobs_label_comes_from_its_record_not_a_later_launch(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _job(sweep, "0", ["width=300"], [_seed(0, 0.99), _seed(1, 0.98)])
    # a relaunch over another list rewrote .hydra, then refused the job (its run kept)
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text("- width=100\n")
    (group,) = tables.summarize(tables.collect_runs(sweep))["group"]
    assert group == "width=300"


def test_a_signed_difference_that_rounds_to_zero_reads_plus_zero():
    assert [tables.signed(x) for x in (-0.004, 0.004, -0.006, 0.1, -1.234)] == [
        "+0.00", "+0.00", "-0.01", "+0.10", "-1.23"]
    assert tables.signed(-0.04, digits=1) == "+0.0"


def test_key_columns_put_the_swept_keys_first_whatever_order_a_job_listed_them(
        tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    # job 0 relaunched on its own lists the constant key first; job 1 lists the swept ones reversed
    _job(sweep, "0", ["experiment=abl", "dropout=0.0", "data.expand=false"], [_seed(0, 0.99)])
    _job(sweep, "1", ["data.expand=true", "dropout=0.5", "experiment=abl"], [_seed(0, 0.98)])
    runs = tables.collect_runs(sweep)
    assert tables.override_keys(runs) == ["dropout", "data.expand", "experiment"]
    summary = tables.summarize(runs)
    assert tables.override_keys(summary) == ["dropout", "data.expand", "experiment"]


def test_the_table_command_refuses_a_single_run_dir_in_one_line(tmp_path: Path, capsys) -> None:
    from experiments.table import main

    _job(tmp_path / "sweep", "0", ["pooling=max"], [_seed(0, 0.98)], [[0.9]])
    before = sorted(p.name for p in (tmp_path / "sweep" / "0").iterdir())
    assert main([str(tmp_path / "sweep" / "0")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is one run's dir, not a sweep's" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "sweep" / "0").iterdir()) == before  # wrote nothing
    assert main([str(tmp_path / "sweep")]) == 0


def test_a_reduced_evaluation_run_is_named_in_the_table(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    _job(sweep, "0", ["pooling=max"], [_seed(0, 0.98), _seed(1, 0.981)], [[0.9, 0.9]])
    _job(sweep, "1", ["pooling=l2"], [_seed(0, 0.97), _seed(1, 0.971)], [[0.9, 0.9]],
         reduced_eval={"val_limit": 500})
    runs = tables.collect_runs(sweep)
    md = tables.to_markdown(tables.summarize(runs), runs)
    assert "**Reduced evaluation**" in md and "job(s) 1." in md
    full = tables.collect_runs(sweep / "0")
    assert "Reduced evaluation" not in tables.to_markdown(tables.summarize(full), full)
