"""The hyperparameter search through the CLI: Optuna over validation accuracy, one process or
the joblib launcher (its own file so that pytest-xdist runs it beside test_workflow.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def train(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_optuna_search_optimises_validation_accuracy(tmp_path, mnist_dir):
    sweep = tmp_path / "search"
    proc = train("-m", "hparams_search=mnist_optuna", "hydra.sweeper.n_trials=2",
                 "train.epochs=1", "data.train_limit=2000", f"data.dir={mnist_dir}",
                 f"hydra.sweep.dir={sweep}", "train.progress=false", "logger=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    assert sorted(jobs) == ["0", "1"] and all(m["status"] == "ok" for m in jobs.values())
    assert len({m["provenance"]["command"] for m in jobs.values()}) == 1
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = max(jobs.values(), key=lambda m: m["val_acc"])
    assert results["best_value"] == pytest.approx(best["val_acc"])  # validation, not test
    assert set(results["best_params"]) == {"optimizer.lr", "optimizer.l2", "dropout"}
    for name in jobs:
        config = json.loads((sweep / name / "config.json").read_text())
        assert config["model"]["name"] == "nielsen_conv2"
    assert (sweep / "table.md").exists()
    assert "jobs: 2 ok, 0 diverged, 0 failed" in proc.stdout


@pytest.mark.slow
def test_optuna_search_with_the_joblib_launcher(tmp_path, mnist_dir):
    sweep = tmp_path / "search"
    proc = train("-m", "hparams_search=mnist_optuna", "hydra/launcher=joblib",
                 "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2", "train.epochs=1",
                 "data.train_limit=1000", f"data.dir={mnist_dir}", f"hydra.sweep.dir={sweep}",
                 "train.progress=false", "logger=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(sweep.glob("*/metrics.json"))) == 2
    assert (sweep / "optimization_results.yaml").exists()
