"""Orbax checkpoints: a Progress round-trips exactly; a resumed run equals an uninterrupted one."""

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from cnn_jax import experiment
from cnn_jax.config import (
    ConvBlockConfig,
    DenseConfig,
    ModelConfig,
    OptimizerConfig,
)
from cnn_jax.models import ConvNet
from cnn_jax.train import Progress, init_states, make_optimizer
from cnn_jax.train import checkpoint as ckpt
from experiments.compose import compose_config

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=nielsen_conv1", "data.train_limit=600", "train.batch_size=50",
        "train.progress=false"]
SGD = ["optimizer=sgd", "activation=sigmoid"]


def assert_trees_equal(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    flat, leaves = jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_leaves(b)
    for (path, x), y in zip(flat, leaves, strict=True):
        name = jax.tree_util.keystr(path)
        assert np.asarray(x).dtype == np.asarray(y).dtype, name
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)


def small_progress(scale: float = 1.0) -> Progress:
    model = ConvNet(ModelConfig(conv=(ConvBlockConfig(3),), dense=(DenseConfig(8),)))
    tx = make_optimizer(OptimizerConfig("adam", lr=1e-3, schedule="cosine"), 10, 2)
    state = init_states(model, tx, [0, 1])
    state = state._replace(step=state.step + 7,
                           opt_state=jax.tree_util.tree_map(lambda a: a + 0.5, state.opt_state))
    best = jax.tree_util.tree_map(lambda a: a * scale, state.params)
    history = [{"epoch": 1, "train_loss": [0.5, 0.25], "val_acc": [0.9, 0.8],
                "test_acc": [0.875, 0.75], "seconds": 1.5}]
    return Progress(state, best, 1, history)


def test_progress_round_trips_exactly(tmp_path):
    manager = ckpt.checkpoint_manager(tmp_path / "ck")
    assert ckpt.restore_progress(manager, small_progress()) is None
    saved = small_progress(scale=2.0)
    ckpt.save_progress(manager, saved)
    restored = ckpt.restore_progress(ckpt.checkpoint_manager(tmp_path / "ck"), small_progress())
    assert restored.epochs_done == 1 == restored.history[-1]["epoch"]
    assert restored.history == saved.history
    assert_trees_equal(restored.state._asdict(), saved.state._asdict())
    assert_trees_equal(restored.best_params, saved.best_params)
    raw = ckpt.load_checkpoint(tmp_path / "ck")
    assert raw["meta"]["epochs_done"] == 1
    assert_trees_equal(raw["best"], saved.best_params)
    assert np.asarray(raw["best"]["conv0"]["kernel"]).shape[0] == 2  # leading seed axis


def test_a_checkpoint_saved_under_the_old_meta_name_restores(tmp_path):
    import orbax.checkpoint as ocp

    saved = small_progress(scale=2.0)
    manager = ckpt.checkpoint_manager(tmp_path / "ck")
    trees = {"state": saved.state._asdict(), "best": saved.best_params}
    manager.save(1, args=ocp.args.Composite(  # as runs saved before `epochs_done` was named so
        trees=ocp.args.StandardSave(trees),
        meta=ocp.args.JsonSave({"next_epoch": 1, "history": saved.history})))
    manager.wait_until_finished()
    restored = ckpt.restore_progress(ckpt.checkpoint_manager(tmp_path / "ck"), small_progress())
    assert restored.epochs_done == 1 and restored.history == saved.history


def test_load_checkpoint_of_empty_dir_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.load_checkpoint(tmp_path / "none")


def make_cfg(mnist_dir, *overrides):
    return compose_config(*TINY, f"data.dir={mnist_dir}", *overrides)


def lines_of(run_dir: Path) -> list[str]:
    return (run_dir / "metrics.jsonl").read_text().splitlines()


def epochs_of(run_dir: Path) -> list[dict]:
    """Per-epoch records without their timings."""
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in lines_of(run_dir)]


def final_state(run_dir: Path) -> dict:
    raw = ckpt.load_checkpoint(run_dir / experiment.CHECKPOINTS)
    return {"state": raw["state"], "best": raw["best"]}


def per_seed(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "metrics.json").read_text())["per_seed"]


class Killed(Exception):
    """Stands in for a job killed right after a checkpoint was written."""


def test_killed_then_resumed_run_equals_uninterrupted(tmp_path, mnist_dir, monkeypatch, caplog):
    # Adam with a one-cycle schedule over 3 epochs: the optimizer state and the schedule's step
    # count must both be restored; two seeds exercise the vmapped seed axis.
    cfg = make_cfg(mnist_dir, "optimizer=adam", "train.epochs=3", "train.seeds=2")
    experiment.run(cfg, tmp_path / "whole")

    save = ckpt.save_progress

    def save_then_die(manager, progress):
        save(manager, progress)
        if progress.epochs_done == 2:
            raise Killed

    monkeypatch.setattr(ckpt, "save_progress", save_then_die)
    with pytest.raises(Killed):
        experiment.run(cfg, tmp_path / "cut")
    monkeypatch.setattr(ckpt, "save_progress", save)
    before = lines_of(tmp_path / "cut")
    assert len(before) == 2
    resume = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=True))
    with caplog.at_level(logging.INFO, logger=experiment.__name__):
        resumed = experiment.run(resume, tmp_path / "cut")
    assert resumed["epochs"] == 3
    # epochs count from 1 everywhere: the checkpoint's epoch, the log's, the history's
    assert resumed["resumed_from"] == 2 == json.loads(before[-1])["epoch"]
    assert f"resuming {tmp_path / 'cut'} at epoch 3/3" in caplog.text
    assert lines_of(tmp_path / "cut")[:2] == before  # epochs 1-2 kept (timings too), not rerun
    assert epochs_of(tmp_path / "cut") == epochs_of(tmp_path / "whole")
    assert per_seed(tmp_path / "cut") == per_seed(tmp_path / "whole")
    assert_trees_equal(final_state(tmp_path / "cut"), final_state(tmp_path / "whole"))


def test_resume_from_finished_run_trains_nothing_more_and_other_shapes_are_refused(
        tmp_path, mnist_dir):
    from cnn_jax.results.rundir import RunDirTaken

    cfg = make_cfg(mnist_dir, *SGD, "train.epochs=1", "train.resume=true")
    first = experiment.run(cfg, tmp_path)
    record = (tmp_path / "metrics.json").read_text()
    again = experiment.run(cfg, tmp_path)  # finished: its record is returned, nothing trains
    assert again["epochs"] == first["epochs"] == 1
    assert again["per_seed"] == first["per_seed"]
    assert again["train_seconds"] == first["train_seconds"] and len(epochs_of(tmp_path)) == 1
    assert (tmp_path / "metrics.json").read_text() == record
    # a checkpoint of other shapes (2 seeds, not 1) is refused and the dir left as it was
    before = {name: (tmp_path / name).read_text() for name in ("config.json", "metrics.json")}
    two_seeds = make_cfg(mnist_dir, *SGD, "train.epochs=1", "train.seeds=2", "train.resume=true")
    calls = []

    class Recorder:  # an experiment logger: it must not hear of the refused run
        def __getattr__(self, name):
            return lambda *args: calls.append(name)

    with pytest.raises(RunDirTaken, match="checkpoint does not fit this config"):
        experiment.run(two_seeds, tmp_path, writer=Recorder())
    assert {name: (tmp_path / name).read_text() for name in before} == before
    assert calls == ["close"]


def cli(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.train", f"hydra.run.dir={run_dir}", *TINY, *SGD,
           *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_cli_resume_with_more_epochs_equals_uninterrupted(tmp_path, mnist_dir):
    # Constant-lr SGD does not depend on the total epoch count, so 2 epochs then "3 with resume"
    # must retrace the uninterrupted 3-epoch run exactly.
    data = f"data.dir={mnist_dir}"
    experiment.run(make_cfg(mnist_dir, *SGD, "train.epochs=3"), tmp_path / "whole")
    proc = cli(tmp_path / "cut", data, "train.epochs=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    before = lines_of(tmp_path / "cut")
    proc = cli(tmp_path / "cut", data, "train.epochs=3", "train.resume=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert lines_of(tmp_path / "cut")[:2] == before  # epochs 1-2 kept (timings too), not rerun
    assert epochs_of(tmp_path / "cut") == epochs_of(tmp_path / "whole")
    assert per_seed(tmp_path / "cut") == per_seed(tmp_path / "whole")
    assert_trees_equal(final_state(tmp_path / "cut"), final_state(tmp_path / "whole"))
    config = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["train"]["resume"] is True


def test_a_corrupt_latest_checkpoint_is_named_and_the_one_before_resumes(tmp_path, mnist_dir):
    from cnn_jax.train.stop import Interrupted, StopRequest

    cfg = make_cfg(mnist_dir, *SGD, "train.epochs=3")
    experiment.run(cfg, tmp_path / "whole")
    stop = StopRequest()

    class StopAfterTwo:  # an experiment logger that asks the run to stop after epoch 2
        def config(self, *a): pass
        def summary(self, *a): pass
        def close(self): pass
        def epoch(self, record, seeds):
            if record["epoch"] == 2:
                stop.set()

    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        experiment.run(cfg, cut, writer=StopAfterTwo(), stop=stop)
    assert sorted(p.name for p in (cut / "checkpoints").iterdir() if p.name.isdigit()) == [
        "1", "2"]  # the two latest epochs are kept
    for f in (cut / "checkpoints" / "2").rglob("*"):
        if f.is_file() and "meta" in f.parts:
            f.write_bytes(b"\xff\xfe not json")
    warnings = []
    import logging

    class Catch(logging.Handler):
        def emit(self, rec):
            warnings.append(rec.getMessage())

    handler = Catch(logging.WARNING)
    logging.getLogger("cnn_jax.experiment").addHandler(handler)
    try:
        experiment.run(cfg, cut)
    finally:
        logging.getLogger("cnn_jax.experiment").removeHandler(handler)
    assert any("checkpoint of epoch 2 is corrupt" in w and "resuming from epoch 1" in w
               for w in warnings), warnings
    assert epochs_of(cut) == epochs_of(tmp_path / "whole")
    assert per_seed(cut) == per_seed(tmp_path / "whole")
    # every saved epoch unreadable: named corrupt, a one-line ConfigError, the dir left alone
    for f in (cut / "checkpoints").rglob("*"):
        if f.is_file() and "meta" in f.parts:
            f.write_bytes(b"\xff\xfe not json")
    (cut / "metrics.json").unlink()
    from cnn_jax.config import ConfigError

    with pytest.raises(ConfigError, match="is corrupt"):
        experiment.run(cfg, cut)
