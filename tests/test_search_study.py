"""The Optuna study sweeper's parts without training: the search space, the storage setting, the
trial budget under concurrent askers, the per-epoch value, the pruned status in the records."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import optuna
import pytest
import yaml
from omegaconf import OmegaConf

from cnn_jax.config import ConfigError
from experiments.callbacks import job_statuses, status_line
from experiments.search_trial import TrialPruned, TrialReporter, epoch_value, pruned
from hydra_plugins.cnn_jax_optuna import _space, _storage, _study
from hydra_plugins.cnn_jax_optuna.sweeper import _checked

ROOT = Path(__file__).resolve().parent.parent


def settings(storage: str | None, n_trials: int, n_jobs: int = 1, **extra) -> dict:
    return {"storage": storage, "study_name": "s", "direction": "maximize", "n_trials": n_trials,
            "n_jobs": n_jobs, "heartbeat_interval": None, "pruner": None,
            "sampler": {"_target_": "optuna.samplers.RandomSampler", "seed": 0}, **extra}


def test_the_search_space_reads_hydras_sweeps_and_the_command_line_replaces_an_entry():
    space, fixed = _space.search_space(
        {"lr": "tag(log, interval(0.001, 0.1))", "width": "tag(int, interval(2, 8))",
         "act": "relu,tanh", "dropout": "interval(0.0, 0.5)", "seed": "3"},
        ["dropout=choice(0.1,0.2)", "pool=range(1,4)", "train.epochs=2"])
    assert space["lr"] == optuna.distributions.FloatDistribution(0.001, 0.1, log=True)
    assert space["width"] == optuna.distributions.IntDistribution(2, 8)
    assert space["act"] == optuna.distributions.CategoricalDistribution(["relu", "tanh"])
    assert space["dropout"] == optuna.distributions.CategoricalDistribution([0.1, 0.2])
    assert space["pool"] == optuna.distributions.CategoricalDistribution([1, 2, 3])
    assert fixed == ["seed=3", "train.epochs=2"]
    assert _space.trial_overrides({"lr": 0.01, "act": "it's"}) == ["lr=0.01", "act='it\\'s'"]


@pytest.mark.parametrize("spec", ["sqlite:///x.db", "postgresql://u@h:5/d", "journal:/x.log",
                                  None])
def test_a_storage_setting_names_memory_an_rdb_url_or_a_journal_file(spec):
    assert _storage.check_storage(spec) == spec


def test_another_storage_setting_is_a_one_line_error():
    with pytest.raises(ConfigError, match="storage='x.db' is not one of null"):
        _storage.check_storage("x.db")
    assert _storage.shown("postgresql://u:secret@h:5/d") == "postgresql://u:***@h:5/d"


def test_settings_that_would_tune_on_test_or_minimise_are_refused():
    config = OmegaConf.create({"optimized_metric": "test_acc"})
    with pytest.raises(ConfigError, match="optimized_metric='test_acc'"):
        _checked(settings(None, 2), config)
    config = OmegaConf.create({"optimized_metric": "val_acc"})
    with pytest.raises(ConfigError, match="direction='minimize'"):
        _checked(settings(None, 2, direction="minimize"), config)
    with pytest.raises(ConfigError, match="n_trials=0"):
        _checked(settings(None, 0), config)
    assert _checked(settings("sqlite:///x.db", 2), config) == "val_acc"


def test_the_search_file_prunes_with_the_median_pruner_and_null_means_no_pruning():
    sweeper = yaml.safe_load((ROOT / "conf/hparams_search/mnist_optuna.yaml").read_text())
    pruner = sweeper["hydra"]["sweeper"]["pruner"]
    assert isinstance(_study.make_pruner(pruner), optuna.pruners.MedianPruner)
    assert isinstance(_study.make_pruner(None), optuna.pruners.NopPruner)


def test_a_seeded_sampler_gets_a_seed_per_trial():
    sampler = {"_target_": "optuna.samplers.RandomSampler", "seed": 5}
    draw = lambda offset: _study.make_sampler(sampler, offset)._rng.rng.uniform()
    assert draw(1) == draw(1) != draw(2)


def test_batches_stop_at_the_budget_and_stale_trials_are_not_counted():
    study = _study.open_study(settings(None, 3, n_jobs=2))
    first = _study.ask_batch(study, settings(None, 3, n_jobs=2), {})
    assert [t.number for t in first] == [0, 1]
    study._storage.set_trial_system_attr(first[0]._trial_id, _study.STALE, True)
    study.tell(first[0], state=optuna.trial.TrialState.FAIL)
    assert [t.number for t in _study.ask_batch(study, settings(None, 3, n_jobs=2), {})] == [2, 3]
    assert _study.ask_batch(study, settings(None, 3, n_jobs=2), {}) == []


def test_a_trial_whose_worker_died_is_run_again_with_its_params_in_its_job_dir(tmp_path):
    import time

    spec = f"sqlite:///{tmp_path / 'study.db'}"
    conf = settings(spec, 2, heartbeat_interval=1)
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study = _study.open_study(conf)
    (dead,) = _study.ask_batch(study, conf, space)  # its worker dies: no heartbeat after this
    time.sleep(3.5)  # stale after 2 heartbeat intervals (sqlite keeps whole seconds)
    (again,) = _study.ask_batch(study, conf, space)
    assert again.params == dead.params and again.user_attrs == {"job": "0", "resumes": 0}
    failed = study.get_trials(deepcopy=False)[0]
    assert failed.state.name == "FAIL" and failed.system_attrs[_study.STALE]
    study.tell(again, 0.5)
    (last,) = _study.ask_batch(study, conf, space)  # the budget: 2 trials besides the stale one
    assert last.number == 2 and last.user_attrs == {"job": "2"}
    study.tell(last, 0.4)
    assert _study.ask_batch(study, conf, space) == []


@pytest.mark.parametrize("storage", ["sqlite:///{}/study.db", "journal:{}/study.log"])
def test_concurrent_askers_on_one_stored_study_ask_exactly_its_trials(tmp_path, storage):
    spec = storage.format(tmp_path)
    asked: list[int] = []

    def worker() -> None:
        study = _study.open_study(settings(spec, 12))
        space = {"x": optuna.distributions.FloatDistribution(0, 1)}
        while trials := _study.ask_batch(study, settings(spec, 12), space):
            asked.extend(t.number for t in trials)
            for t in trials:
                study.tell(t, t.params["x"])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(asked) == list(range(12))
    assert len(optuna.load_study(study_name="s", storage=_storage.make_storage(spec)).trials) == 12


class FakeTrial:
    def __init__(self, prune_at: int) -> None:
        self.prune_at, self.reports = prune_at, []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.reports[-1][0] >= self.prune_at


def test_each_epochs_mean_validation_accuracy_is_reported_until_the_pruner_stops_it():
    assert epoch_value({"val_acc": [0.5, None, float("nan"), 0.7]}) == pytest.approx(0.3)
    trial = FakeTrial(prune_at=2)
    reporter = TrialReporter(trial)
    reporter.epoch({"epoch": 1, "val_acc": [0.2, 0.4]}, [0, 1])
    with pytest.raises(TrialPruned, match="after epoch 2"):
        reporter.epoch({"epoch": 2, "val_acc": [0.3, 0.5]}, [0, 1])
    assert trial.reports == [(1, pytest.approx(0.3)), (2, pytest.approx(0.4))]


def test_a_pruned_run_is_recorded_counted_and_listed_in_the_tables(tmp_path, capsys):
    from cnn_jax.results import tables

    for job in ("0", "1"):
        (tmp_path / job).mkdir()
    (tmp_path / "0" / "metrics.json").write_text(json.dumps({
        "status": "ok", "overrides": ["dropout=0.1"], "per_seed": [
            {"seed": 0, "status": "ok", "test_acc": 0.9, "val_acc": 0.9, "best_val_epoch": 1}],
        "epochs": 1, "seconds": 1.0}))
    assert pruned(tmp_path / "1", ["dropout=0.4"], TrialPruned(2, 0.1), "val_acc") == 0.0
    assert "pruned: pruned by the search after epoch 2" in capsys.readouterr().out
    assert json.loads((tmp_path / "1" / "metrics.json").read_text())["status"] == "pruned"
    counts = job_statuses(tmp_path)
    assert counts == {"ok": 1, "diverged": 0, "failed": 0, "pruned": 1, "running": 0}
    assert status_line(counts) == "jobs: 1 ok, 0 diverged, 0 failed, 1 pruned"
    assert status_line({**counts, "pruned": 0}) == "jobs: 1 ok, 0 diverged, 0 failed"
    runs = tables.collect_runs(tmp_path)
    summary = tables.summarize(runs)
    assert list(summary["pruned_seeds"]) == [[], ["job 1"]]
    failures = tables.failures(runs)
    assert list(failures["status"]) == ["pruned"] and "epoch 2" in failures["error"].iloc[0]


def test_a_job_another_worker_still_trains_counts_as_running_not_failed(tmp_path,
                                                                        other_process_holding):
    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "0" / ".hydra" / "overrides.yaml").write_text("- dropout=0.1\n")
    with other_process_holding(tmp_path / "0"):
        counts = job_statuses(tmp_path)
        assert counts["running"] == 1 and counts["failed"] == 0
        assert status_line(counts) == "jobs: 0 ok, 0 diverged, 0 failed, 1 running"
    assert job_statuses(tmp_path)["failed"] == 1  # no process, no metrics.json: failed


def test_the_job_side_imports_neither_jax_nor_optuna():
    import subprocess
    import sys

    code = ("import sys, experiments.search_trial\n"
            "print(sorted({'jax', 'optuna'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_enqueued_start_points_run_first_once_and_bad_ones_are_one_line_errors(tmp_path):
    space = {"lr": optuna.distributions.FloatDistribution(0.001, 0.1),
             "width": optuna.distributions.CategoricalDistribution([8, 16])}
    conf = {**settings(f"sqlite:///{tmp_path / 'study.db'}", 3),
            "enqueue": [{"lr": 0.01, "width": 16}]}
    study = _study.open_study(conf)
    assert _study.enqueue_start(study, conf, space) == 1
    first, second = _study.ask_batch(study, {**conf, "n_jobs": 2}, space)
    assert first.params == {"lr": 0.01, "width": 16} and second.params != first.params
    for t in (first, second):
        study.tell(t, 0.5)
    assert _study.enqueue_start(_study.open_study(conf), conf, space) == 0  # a rerun: started
    with pytest.raises(ConfigError, match=r"enqueue\[0\].width=12 is outside its search space"):
        _study.enqueue_start(study, {**conf, "enqueue": [{"width": 12}]}, space)
    with pytest.raises(ConfigError, match=r"enqueue\[0\].depth=2: not a swept key"):
        _study.enqueue_start(study, {**conf, "enqueue": [{"depth": 2}]}, space)
    fresh = _study.open_study(settings(None, 3))  # a key the command line fixes is left out
    start = {**conf, "storage": None, "enqueue": [{"lr": 0.02, "depth": 2}]}
    assert _study.enqueue_start(fresh, start, space, fixed={"depth"}) == 1
    assert _study.ask_batch(fresh, settings(None, 3), space)[0].params["lr"] == 0.02
