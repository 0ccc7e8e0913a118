"""Sweeps through a real one-node SLURM cluster (the `cluster` fixture): a 4-job sweep with
submitit_slurm writes its table, a job requeued mid-run continues from its checkpoint and ends as
an uninterrupted run, array_parallelism limits the jobs running at once, the tasks of a job
array share one Optuna study, and `reproduce --launcher slurm` runs a sweep as a job array."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from search_runs import check_shared_study, search_args
from slurm_cluster import PARTITION

from cnn_jax.results.rundir import has_checkpoint

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model=fc30", "data.train_limit=2000", "train.epochs=1", "logger=none",
        "train.progress=false"]


def command(sweep_dir: Path, mnist_dir: Path, launcher: str, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "experiments.train", "-m", *TINY, *overrides,
            f"data.dir={mnist_dir}", f"hydra.sweep.dir={sweep_dir}",
            f"hydra/launcher={launcher}", f"hydra.launcher.partition={PARTITION}",
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.timeout_min=20"]  # submitit: a USR2 in the first 10 min is a preemption


def sweep(cluster, sweep_dir: Path, mnist_dir: Path, launcher: str,
          *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(sweep_dir, mnist_dir, launcher, *overrides), cwd=ROOT,
                          env=cluster.env, capture_output=True, text=True, timeout=600)


def array_jobs(cluster, sweep_dir: Path) -> list[dict[str, str]]:
    """The controller's records of the sweep's jobs (submitit names its folders by job id)."""
    ids = {p.name.split("_")[0] for p in (sweep_dir / ".submitit").iterdir() if p.is_dir()}
    return [job for array in sorted(ids) for job in cluster.jobs(array)]


def most_at_once(jobs: list[dict[str, str]]) -> int:
    """The most jobs running at the same time, from their StartTime/EndTime (whole seconds: a job
    starting in the second another ended is not counted as overlapping it)."""
    spans = [(datetime.fromisoformat(j["StartTime"]), datetime.fromisoformat(j["EndTime"]))
             for j in jobs]
    return max(sum(s < end and start < e for s, e in spans) for start, end in spans)


def epochs_of(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_four_job_sweep_on_slurm_writes_its_table(cluster, tmp_path, mnist_dir):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(cluster, sweep_dir, mnist_dir, "submitit_slurm",
                 "activation=relu,sigmoid", "seed=0,1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "jobs: 4 ok, 0 diverged, 0 failed"
    table = (sweep_dir / "table.md").read_text()
    assert "relu" in table and "sigmoid" in table
    jobs = array_jobs(cluster, sweep_dir)
    assert len(jobs) == 4 and {j["JobState"] for j in jobs} == {"COMPLETED"}
    assert {j["Partition"] for j in jobs} == {PARTITION}
    assert most_at_once(jobs) == 2  # both CPUs used: the limit test below can fail
    assert "sacct error" not in proc.stderr  # submitit followed the jobs without warnings


# How a running job is stopped and put back in the queue: by hand (SLURM's SIGTERM; the run stops
# after its chunk), or by a preemption notice (the USR2 that SLURM sends signal_delay_s before it
# preempts; submitit requeues the job itself): the command, and what the job's log then says
INTERRUPTIONS = {
    "scontrol_requeue": (("scontrol", "requeue"), "stopped at epoch"),
    "usr2_preemption_notice": (("scancel", "--signal=USR2"), "this job is preempted"),
}


RESUMED = ["seed=3", "train.epochs=20", "train.batch_size=10"]  # a run the tests interrupt


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_dir) -> list[dict]:
    """The epochs of RESUMED run to its end in one go, here (no cluster)."""
    whole = tmp_path_factory.mktemp("whole")
    ref = subprocess.run([sys.executable, "-m", "experiments.train", *TINY, *RESUMED,
                          f"data.dir={mnist_dir}", f"hydra.run.dir={whole}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    return epochs_of(whole)


@pytest.mark.parametrize("interrupt", INTERRUPTIONS)
def test_requeued_job_continues_from_its_checkpoint_and_ends_as_an_uninterrupted_run(
        cluster, tmp_path, mnist_dir, interrupt, uninterrupted):
    sweep_dir, run_dir = tmp_path / "sweep", tmp_path / "sweep" / "0"
    proc = subprocess.Popen(command(sweep_dir, mnist_dir, "slurm", *RESUMED), cwd=ROOT,
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        while not has_checkpoint(run_dir):
            assert proc.poll() is None, "the sweep ended before its job was requeued"
            time.sleep(0.05)
        (job,) = array_jobs(cluster, sweep_dir)
        cluster.run(*INTERRUPTIONS[interrupt][0], job["JobID"])
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    (job,) = cluster.jobs(job["JobID"])
    assert job["JobState"] == "COMPLETED" and job["Restarts"] == "1"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 20
    assert 1 <= metrics["resumed_from"] < 20
    log = "".join(p.read_text() for p in (sweep_dir / ".submitit").glob("*/*_log.*"))
    assert INTERRUPTIONS[interrupt][1] in log
    assert f"resuming {run_dir} at epoch {metrics['resumed_from'] + 1}/20" in log
    assert epochs_of(run_dir) == uninterrupted


def test_array_parallelism_runs_one_job_at_a_time(cluster, tmp_path, mnist_dir):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(cluster, sweep_dir, mnist_dir, "slurm", "seed=0,1,2",
                 "hydra.launcher.array_parallelism=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = array_jobs(cluster, sweep_dir)
    assert len(jobs) == 3 and {j["JobState"] for j in jobs} == {"COMPLETED"}
    assert most_at_once(jobs) == 1


FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


def wait_for_array(cluster, array_id: str, tasks: int, timeout: float = 600) -> list[dict]:
    """The array's task records once all `tasks` of them have ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = cluster.jobs(array_id)
        if len(jobs) == tasks and {j["JobState"] for j in jobs} <= FINAL_STATES:
            return jobs
        time.sleep(1)
    raise AssertionError(f"array {array_id} not done after {timeout:.0f} s: {jobs}")


def test_array_tasks_share_one_optuna_study(cluster, tmp_path, mnist_dir):
    sweep, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    worker = search_args(sweep, mnist_dir, "hydra.sweeper.n_trials=4", "hydra.sweeper.pruner=null",
                         f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=shared")
    submitted = cluster.run("sbatch", "--parsable", "--array=0-1", f"--partition={PARTITION}",
                            "--cpus-per-task=1", f"--chdir={ROOT}",
                            f"--output={tmp_path}/worker_%a.log", "--wrap", shlex.join(worker))
    jobs = wait_for_array(cluster, submitted.stdout.strip().split(";")[0], tasks=2)
    logs = [p.read_text() for p in sorted(tmp_path.glob("worker_*.log"))]
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}, "\n".join(g[-2000:] for g in logs)
    assert all(re.search(r"trial \d+ \(job \d+\): ok", log) for log in logs)  # both did trials
    assert most_at_once(jobs) == 2  # the two workers asked the study for trials at the same time
    check_shared_study(sweep, storage, "shared", 4)


def test_reproduce_launches_a_sweep_on_slurm_and_keeps_its_records(cluster, tmp_path, mnist_dir):
    """`reproduce --launcher slurm`: the sweep as one job array, each job's records kept and the
    table written; a second launch finds both jobs finished."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    cmd = [sys.executable, "-m", "experiments.reproduce", "cnn_vs_fc", "--runs", str(runs),
           "--out", str(out), "--budget", "tiny", "--launcher", "slurm",
           "model=fc30,nielsen_fc", "train.seeds=1", "train.checkpoint=false", "logger=none",
           f"data.dir={mnist_dir}", f"hydra.launcher.partition={PARTITION}",
           "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=20"]
    first = subprocess.run(cmd, cwd=ROOT, env=cluster.env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    jobs = array_jobs(cluster, runs / "cnn_vs_fc")
    assert len(jobs) == 2 and {j["JobState"] for j in jobs} == {"COMPLETED"}
    for job in ("0", "1"):
        assert json.loads((out / "runs" / "cnn_vs_fc" / job / "metrics.json").read_text())[
            "status"] == "ok"
    assert (out / "cnn_vs_fc" / "table.csv").is_file()
    stamps = {p: p.stat().st_mtime_ns for p in (runs / "cnn_vs_fc").rglob("metrics.json")}
    again = subprocess.run(cmd, cwd=ROOT, env=cluster.env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "   slurm job 1: model=nielsen_fc: finished, 1/1 epochs; nothing to train" in (
        again.stdout.splitlines())
    assert len(stamps) == 2 and {p: p.stat().st_mtime_ns for p in stamps} == stamps
