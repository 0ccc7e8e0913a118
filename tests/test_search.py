"""The hyperparameter search through the CLI: Optuna over validation accuracy in one process,
two workers sharing a sqlite study, a pruned trial, a killed search resumed, the joblib launcher
(its own file so that pytest-xdist runs it beside test_workflow.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from search_runs import (
    ROOT,
    check_shared_study,
    job_metrics,
    search_args,
    start,
    study_trials,
    wait_ok,
)

# prunes every trial whose first epoch's validation accuracy is below 99% (all tiny runs)
THRESHOLD_PRUNER = ("hydra.sweeper.pruner=null",
                    "+hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, "
                    "lower: 0.99, n_warmup_steps: 0}")


def train(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_optuna_search_optimises_validation_accuracy(tmp_path, mnist_dir):
    sweep = tmp_path / "search"
    proc = train("-m", "hparams_search=mnist_optuna", "hydra.sweeper.n_trials=2",
                 "train.epochs=1", "data.train_limit=2000", f"data.dir={mnist_dir}",
                 f"hydra.sweep.dir={sweep}", "train.progress=false", "logger=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_metrics(sweep)
    assert sorted(jobs) == ["0", "1"] and all(m["status"] == "ok" for m in jobs.values())
    assert len({m["provenance"]["command"] for m in jobs.values()}) == 1
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = max(jobs, key=lambda name: jobs[name]["val_acc"])
    assert results["objective"] == "val_acc" and results["storage"] is None
    assert results["best_value"] == pytest.approx(jobs[best]["val_acc"])  # validation, not test
    assert results["best_run_dir"] == str(sweep / best)
    assert set(results["best_params"]) == {"optimizer.lr", "optimizer.l2", "dropout"}
    for name in jobs:
        config = json.loads((sweep / name / "config.json").read_text())
        assert config["model"]["name"] == "nielsen_conv2"
    assert (sweep / "table.md").exists()
    assert "jobs: 2 ok, 0 diverged, 0 failed" in proc.stdout


@pytest.mark.slow  # 83-117 s measured on 2 shared cores; test_search_study.py's concurrent
# askers test the same budget in the default suite
def test_two_workers_share_one_sqlite_study_and_run_exactly_its_trials(tmp_path, mnist_dir):
    sweep, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    args = search_args(sweep, mnist_dir, "hydra.sweeper.n_trials=5", "hydra.sweeper.pruner=null",
                       f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=shared")
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    wait_ok([start(args, log) for log in logs], logs)
    check_shared_study(sweep, storage, "shared", 5)


def test_a_trial_below_the_pruners_threshold_is_pruned_and_listed(tmp_path, mnist_dir):
    sweep, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    proc = subprocess.run(
        search_args(sweep, mnist_dir, "hydra.sweeper.n_trials=1", "train.epochs=3",
                    f"hydra.sweeper.storage={storage}", *THRESHOLD_PRUNER, table=True),
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (trial,) = study_trials(storage, "mnist_optuna")
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [1]
    metrics = job_metrics(sweep)["0"]
    assert metrics["status"] == "pruned" and metrics["epochs"] == 1
    assert len((sweep / "0" / "metrics.jsonl").read_text().splitlines()) == 1  # stopped early
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["trials"]["pruned"] == 1 and results["best_trial"] is None
    assert "jobs: 0 ok, 0 diverged, 0 failed, 1 pruned" in proc.stdout
    listed = (sweep / "table.md").read_text().split("### Diverged")[1]
    assert "| 0     |" in listed and "pruned" in listed


@pytest.mark.slow  # 52-83 s measured on 2 shared cores; test_search_study.py tests the rerun of
# a dead worker's trial in the default suite
def test_a_killed_search_resumes_its_study_and_the_killed_trials_checkpoint(tmp_path,
                                                                           mnist_dir):
    sweep, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    args = search_args(sweep, mnist_dir, "hydra.sweeper.n_trials=2", "train.epochs=12",
                       "hydra.sweeper.pruner=null", f"hydra.sweeper.storage={storage}",
                       "hydra.sweeper.heartbeat_interval=1")
    log = tmp_path / "killed.log"
    proc = start(args, log)
    epochs = sweep / "0" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    # killed once epoch 2 is recorded: epoch 1's checkpoint is saved by then
    while len(epochs.read_text().splitlines() if epochs.exists() else []) < 2:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (sweep / "0" / "metrics.json").exists(), "the trial finished before the kill"
    time.sleep(3.5)  # its heartbeat goes stale (2 x heartbeat_interval; sqlite: whole seconds)
    wait_ok([start(args, tmp_path / "rerun.log")], [tmp_path / "rerun.log"])
    killed, rerun, second = sorted(study_trials(storage, "mnist_optuna"), key=lambda t: t.number)
    assert killed.state.name == "FAIL" and killed.system_attrs["cnn_jax:stale"]
    assert rerun.user_attrs == {"job": "0", "resumes": 0} and rerun.params == killed.params
    assert rerun.state.name == second.state.name == "COMPLETE"
    jobs = job_metrics(sweep)
    assert sorted(jobs) == ["0", "2"] and jobs["0"]["resumed_from"] >= 1  # its checkpoint
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["n_trials"] == 2 and results["trials"]["complete"] == 2


@pytest.mark.slow
def test_joblib_jobs_report_to_a_study_in_storage_and_are_pruned(tmp_path, mnist_dir):
    sweep, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    proc = subprocess.run(
        search_args(sweep, mnist_dir, "hydra/launcher=joblib", "hydra.sweeper.n_trials=2",
                    "hydra.sweeper.n_jobs=2", "train.epochs=2", f"hydra.sweeper.storage={storage}",
                    *THRESHOLD_PRUNER),
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = study_trials(storage, "mnist_optuna")
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert {m["status"] for m in job_metrics(sweep).values()} == {"pruned"}
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["trials"]["pruned"] == 2


def test_a_two_objective_search_lists_its_pareto_front_from_validation_and_seconds(
        tmp_path, mnist_dir):
    sweep = tmp_path / "frontier"
    proc = train("-m", "hparams_search=fast_frontier", "hydra.sweeper.n_trials=3",
                 "data.train_limit=600", "train.epochs=1", "data.val_limit=200",
                 "data.test_limit=100", f"data.dir={mnist_dir}", f"hydra.sweep.dir={sweep}",
                 "train.progress=false", "logger=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_metrics(sweep)
    assert sorted(jobs) == ["0", "1", "2"] and all(m["status"] == "ok" for m in jobs.values())
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["objectives"] == ["val_acc", "train_seconds"]
    assert results["directions"] == ["maximize", "minimize"]
    front = results["best_trials"]
    points = {name: (m["val_acc"], m["train_seconds"]) for name, m in jobs.items()}
    on_front = {name for name, (acc, sec) in points.items() if not any(
        a >= acc and s <= sec and (a, s) != (acc, sec) for a, s in points.values())}
    assert {t["run_dir"] for t in front} == {str(sweep / name) for name in on_front}
    for t in front:  # each point's values are its run's validation accuracy and seconds
        name = t["run_dir"].rsplit("/", 1)[1]
        assert (t["values"]["val_acc"], t["values"]["train_seconds"]) == pytest.approx(
            points[name])
        assert {"model.conv.0.stride", "model.conv.1.pool.kind", "train.batch_size"} <= set(
            t["params"])
    seconds = [t["values"]["train_seconds"] for t in front]
    assert seconds == sorted(seconds)  # fastest first


def test_a_search_over_two_objectives_refuses_a_pruner_in_one_line(tmp_path):
    proc = train("-m", "hparams_search=mnist_optuna", "optimized_metric=[val_acc,train_seconds]",
                 f"hydra.sweep.dir={tmp_path / 's'}", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: hydra.sweeper.pruner: a search over 2 objectives cannot prune (Optuna prunes "
        "single-objective studies only); set hydra.sweeper.pruner=null")
