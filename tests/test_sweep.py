"""A real tiny sweep through the CLI: 2 pooling kinds x 2 seeds, a job forced to fail, the table
its callback writes and its status line, and a relaunch that skips the finished jobs and reruns
the missing one."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=nielsen_conv1", "optimizer=sgd", "data.train_limit=200", "train.batch_size=50",
        "train.epochs=1", "train.eval_batch_size=1000", "train.progress=false",
        "train.checkpoint=false"]


def multirun(sweep_dir: Path, mnist_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.train", "-m", *TINY, *overrides,
           f"data.dir={mnist_dir}", f"hydra.sweep.dir={sweep_dir}",
           "hydra.sweep.subdir=${hydra.job.override_dirname}",
           "hydra.job.config.override_dirname.exclude_keys=[data.dir]"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, mnist_dir):
    sweep_dir = tmp_path_factory.mktemp("sweep") / "ablation"
    main = multirun(sweep_dir, mnist_dir, "pooling=max,avg", "seed=0,1")
    assert main.returncode == 0, main.stderr[-3000:]
    assert main.stdout.strip().splitlines()[-1] == "jobs: 4 ok, 0 diverged, 0 failed"
    # one more job in the same sweep dir, forced to fail as it runs: a minibatch larger than
    # the training images (a value the config alone cannot refuse before the data is loaded)
    failing = multirun(sweep_dir, mnist_dir, "pooling=l2", "train.batch_size=1000", "seed=0")
    # the sweep finishes and writes its table, then exits non-zero with its status line
    assert failing.returncode == 1, failing.stderr[-3000:]
    assert failing.stdout.strip().splitlines()[-1] == "jobs: 4 ok, 0 diverged, 1 failed"
    return sweep_dir, main, failing


def job_metrics(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.relative_to(sweep_dir).as_posix(): json.loads(p.read_text())
            for p in sweep_dir.rglob("metrics.json")}


def test_every_job_ran_and_the_forced_failure_is_recorded(sweep):
    sweep_dir, _, failing = sweep
    metrics = job_metrics(sweep_dir)
    assert len(metrics) == 5, sorted(metrics)
    ok = {k: m for k, m in metrics.items() if m["status"] == "ok"}
    assert len(ok) == 4 and all(0.0 < m["test_acc"] <= 1.0 for m in ok.values())
    (failed,) = [m for m in metrics.values() if m["status"] == "failed"]
    assert "train.batch_size=1000 exceeds the 200 training images" in failed["error"]
    assert "error: " in failing.stderr


def test_callback_table_has_mean_std_of_each_cell_and_lists_the_failure(sweep):
    sweep_dir, _, _ = sweep
    for name in ("table.md", "table.csv", "table.tex", "ablation.png"):
        assert (sweep_dir / name).stat().st_size > 0, name
    metrics = job_metrics(sweep_dir)
    table = pd.read_csv(sweep_dir / "table.csv")
    md = (sweep_dir / "table.md").read_text()
    for kind in ("max", "avg"):
        accs = [m["test_acc"] for k, m in metrics.items()
                if m["status"] == "ok" and f"pooling={kind}" in k]
        assert len(accs) == 2
        row = table[table["pooling"] == kind]
        assert len(row) == 1, table
        row = row.iloc[0]
        assert row["n"] == 2
        assert row["test_mean"] == pytest.approx(100 * pd.Series(accs).mean(), abs=1e-3)
        assert row["test_std"] == pytest.approx(100 * pd.Series(accs).std(), abs=1e-3)  # sample
        assert f"{row['test_mean']:.2f}" in md
    assert "failed" in md.lower() and "batch_size=1000" in md
    assert md.count("**") >= 2  # the best cell in bold


def test_table_cli_reproduces_the_callback_output(sweep, tmp_path):
    sweep_dir, _, _ = sweep
    proc = subprocess.run([sys.executable, "-m", "experiments.table", str(sweep_dir), "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "table.csv").read_text() == (sweep_dir / "table.csv").read_text()


def test_relaunch_skips_finished_jobs_and_reruns_the_missing_one(sweep, mnist_dir):
    sweep_dir, _, _ = sweep
    jobs = sorted(p.parent for p in sweep_dir.rglob("metrics.json")
                  if json.loads(p.read_text())["status"] == "ok")
    gone = jobs[0] / "metrics.json"
    gone.unlink()
    stamps = {j: (j / "metrics.json").stat().st_mtime_ns for j in jobs[1:]}
    proc = multirun(sweep_dir, mnist_dir, "pooling=max,avg", "seed=0,1")
    assert proc.returncode == 1, proc.stderr[-3000:]  # the failed job is still in the sweep dir
    assert len(re.findall(r"\(finished earlier\)", proc.stdout)) == 3, proc.stdout
    assert json.loads(gone.read_text())["status"] == "ok"
    assert {j: (j / "metrics.json").stat().st_mtime_ns for j in jobs[1:]} == stamps


def test_submitit_local_launcher_runs_a_job(tmp_path, mnist_dir):
    sweep_dir = tmp_path / "submitit"
    proc = multirun(sweep_dir, mnist_dir, "hydra/launcher=submitit_local",
                    "hydra.launcher.timeout_min=10", "seed=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics,) = job_metrics(sweep_dir).values()
    assert metrics["status"] == "ok" and metrics["per_seed"][0]["seed"] == 3
    assert list(sweep_dir.glob(".submitit/*/*_log.out")), "submitit wrote no job logs"
