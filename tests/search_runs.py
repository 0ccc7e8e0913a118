"""What the search tests share: tiny search workers (`-m hparams_search=mnist_optuna` on fc30,
one epoch of 500 images), started as the CLI starts them, and reading a study back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def search_args(sweep: Path, mnist_dir: Path, *extra: str, table: bool = False) -> list[str]:
    """The command line of one tiny search worker writing into `sweep` (by default no table: its
    figure takes longer than the trials)."""
    return [sys.executable, "-m", "experiments.train", "-m", "hparams_search=mnist_optuna",
            "model=fc30", "train.epochs=1", "data.train_limit=500", f"data.dir={mnist_dir}",
            f"hydra.sweep.dir={sweep}", "train.progress=false", "logger=none",
            *([] if table else ["~hydra.callbacks.ablation_table"]), *extra]


def start(args: list[str], log: Path) -> subprocess.Popen:
    """A worker process, its stdout and stderr into `log`."""
    return subprocess.Popen(args, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ok(procs: list[subprocess.Popen], logs: list[Path], timeout: int = 600) -> None:
    """Every worker exits 0 (else the assertion shows its log's end)."""
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=timeout) == 0, log.read_text()[-3000:]


def study_trials(storage: str, name: str) -> list:
    """The study's trials, read from its storage."""
    import optuna

    from hydra_plugins.cnn_jax_optuna._storage import make_storage

    return optuna.load_study(study_name=name, storage=make_storage(storage)).get_trials()


def job_metrics(sweep: Path) -> dict[str, dict]:
    """{job dir name: its metrics.json} of the sweep."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}


def check_shared_study(sweep: Path, storage: str, name: str, n_trials: int) -> None:
    """What two workers of one study must leave: n_trials trials numbered 0..n-1, all complete,
    each run in its own job dir with its own params; the best is the best validation run."""
    import yaml

    from cnn_jax.results.objective import objective

    trials = study_trials(storage, name)
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert all(t.state.name == "COMPLETE" for t in trials)
    jobs = job_metrics(sweep)
    assert sorted(jobs) == sorted(t.user_attrs["job"] for t in trials)
    for t in trials:
        metrics = jobs[t.user_attrs["job"]]
        assert all(f"{k}={v}" in metrics["overrides"] for k, v in t.params.items())
        assert t.value == objective(metrics, "val_acc")
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = max(trials, key=lambda t: t.value)
    assert results["objective"] == "val_acc" and results["n_trials"] == n_trials
    assert results["best_value"] == best.value == max(m["val_acc"] for m in jobs.values())
    assert results["best_run_dir"] == str(sweep / best.user_attrs["job"])
