"""Run dirs: resume a checkpoint of the same config, refuse another config, skip finished runs;
one process at a time in a run dir."""

import json

import pytest

from cnn_jax.config import ConfigError
from cnn_jax.errors import command_line
from cnn_jax.results.rundir import (
    LOCK,
    RunDirInUse,
    RunState,
    differences,
    finished,
    held,
    holder,
    should_resume,
    state_of,
)

CFG = {"optimizer": {"lr": 0.1, "schedule": "constant"},
       "train": {"epochs": 3, "resume": "auto", "progress": True, "compile_cache": "/a"},
       "model": {"conv": [{"features": 20}]}}


def with_(cfg, section, **values):
    return {**cfg, section: {**cfg[section], **values}}


def lay(run_dir, config=CFG, checkpoint=True, status=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    if checkpoint:
        (run_dir / "checkpoints" / "1").mkdir(parents=True)
    if status:
        (run_dir / "metrics.json").write_text(json.dumps({"status": status}))
    return run_dir


def test_differences_ignore_runtime_keys_and_name_the_changed_ones():
    runtime = with_(CFG, "train", progress=False, compile_cache=None, resume=True)
    assert differences(CFG, runtime) == []
    changed = with_(CFG, "optimizer", lr=0.2)
    assert differences(CFG, changed) == ["optimizer.lr: 0.1 -> 0.2"]
    assert differences(CFG, {**CFG, "model": {"conv": ({"features": 20},)}}) == []  # tuple=list


def test_a_key_one_side_lacks_stands_for_its_default():
    # a run made before train.test_errors existed is the same run as one with its default
    assert "test_errors" not in CFG["train"]
    assert differences(CFG, with_(CFG, "train", test_errors=False)) == []
    assert differences(with_(CFG, "train", test_errors=False), CFG) == []
    assert differences(CFG, with_(CFG, "train", test_errors=True)) == [
        "train.test_errors: False -> True"]
    assert differences(CFG, {**CFG, "new_key": 1}) == ["new_key: None -> 1"]  # no default


def test_auto_resumes_a_checkpoint_of_the_same_config(tmp_path):
    assert should_resume(lay(tmp_path), CFG, "auto") is True
    assert should_resume(tmp_path / "empty", CFG, "auto") is False


def test_auto_refuses_another_config_with_one_line(tmp_path):
    lay(tmp_path)
    other = with_(with_(CFG, "optimizer", lr=0.2), "model", conv=[{"features": 40}])
    with pytest.raises(ConfigError) as err:
        should_resume(tmp_path, other, "auto")
    message = str(err.value)
    assert "holds a run of another config" in message and "\n" not in message
    assert "model.conv: [{'features': 20}] -> [{'features': 40}] and 1 more" in message
    assert "TrainConfig(resume=False) starts it over" in message  # a Python caller
    with command_line(), pytest.raises(ConfigError, match="; train.resume=false starts it over"):
        should_resume(tmp_path, other, "auto")  # the command line's own wording
    assert should_resume(tmp_path, other, False) is False
    assert should_resume(tmp_path, other, True) is True


def test_more_epochs_continue_a_constant_schedule_but_not_a_cosine_one_nor_fewer_epochs(tmp_path):
    lay(tmp_path / "c")
    assert should_resume(tmp_path / "c", with_(CFG, "train", epochs=5), "auto") is True
    cosine = with_(CFG, "optimizer", schedule="cosine")
    lay(tmp_path / "cos", cosine)
    with pytest.raises(ConfigError, match="train.epochs: 3 -> 5"):
        should_resume(tmp_path / "cos", with_(cosine, "train", epochs=5), "auto")
    with pytest.raises(ConfigError, match="train.epochs: 3 -> 2"):  # the run may be past 2
        should_resume(tmp_path / "c", with_(CFG, "train", epochs=2), "auto")


def test_a_failed_run_without_checkpoint_starts_over_even_with_another_config(tmp_path):
    lay(tmp_path, checkpoint=False, status="failed")
    assert should_resume(tmp_path, with_(CFG, "optimizer", lr=0.2), "auto") is False
    lay(tmp_path / "done", checkpoint=False, status="ok")
    with pytest.raises(ConfigError):
        should_resume(tmp_path / "done", with_(CFG, "optimizer", lr=0.2), "auto")


def test_finished_only_for_the_same_resolved_config(tmp_path):
    lay(tmp_path / "ok", status="ok")
    assert finished(tmp_path / "ok", CFG) == {"status": "ok"}
    assert finished(tmp_path / "ok", with_(CFG, "train", progress=False)) == {"status": "ok"}
    assert finished(tmp_path / "ok", with_(CFG, "train", epochs=4)) is None
    lay(tmp_path / "div", status="diverged")
    assert finished(tmp_path / "div", CFG) == {"status": "diverged"}
    lay(tmp_path / "bad", status="failed")
    assert finished(tmp_path / "bad", CFG) is None
    lay(tmp_path / "running")
    assert finished(tmp_path / "running", CFG) is None


def test_a_run_dir_is_held_by_one_process_until_it_ends_even_by_sigkill(
        tmp_path, other_process_holding):
    with held(tmp_path), held(tmp_path):  # this process again: free
        pass
    with other_process_holding(tmp_path) as pid:
        with pytest.raises(RunDirInUse, match=f"pid {pid} on .* is training in this run dir"), \
                held(tmp_path):
            pass
        assert [p.name for p in tmp_path.iterdir()] == [LOCK]  # the lock's file only
    with held(tmp_path):  # the holder was killed: its lock went with it
        pass


def test_a_file_system_without_locks_runs_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ran = []
    with held(tmp_path):
        ran.append(True)
    assert ran and "no run dir lock ([Errno 37] No locks available)" in caplog.text


def test_a_run_into_a_dir_another_process_trains_in_writes_nothing(
        tmp_path, mnist_dir, other_process_holding):
    from cnn_jax.experiment import run
    from experiments.compose import compose_config

    cfg = compose_config("train.epochs=1", "data.train_limit=500", f"data.dir={mnist_dir}")
    with other_process_holding(tmp_path), pytest.raises(RunDirInUse):
        run(cfg, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [LOCK]


def test_state_of_is_what_a_run_of_the_config_meets_there(tmp_path, other_process_holding):
    def epochs(run_dir, n, tail=""):
        lines = [json.dumps({"epoch": e}) + "\n" for e in range(n)]
        (run_dir / "metrics.jsonl").write_text("".join(lines) + tail)
        return run_dir

    assert state_of(tmp_path / "none", CFG) == RunState("not started", 0, 3)
    assert state_of(lay(tmp_path / "ckpt"), CFG) == RunState("stopped", 0, 3)
    # a last line cut short by a kill is not an epoch
    two = epochs(lay(tmp_path / "two"), 2, tail='{"epo')
    assert state_of(two, CFG) == RunState("stopped", 2, 3)
    no_ckpt = with_(CFG, "train", checkpoint=False)  # a run without checkpoints starts over
    plain = epochs(lay(tmp_path / "plain", config=no_ckpt), 2)
    assert state_of(plain, no_ckpt) == RunState("not started", 0, 3, "starts over")
    ok = epochs(lay(tmp_path / "ok", status="ok"), 3)
    assert state_of(ok, with_(CFG, "train", progress=False)) == RunState("finished", 3, 3)
    assert state_of(ok) == RunState("finished", 3, 3)  # without a config: its own
    assert state_of(ok, with_(CFG, "train", resume=False)) == RunState(
        "not started", 0, 3, "starts over")
    assert state_of(lay(tmp_path / "div", status="diverged"), CFG).state == "diverged"
    assert state_of(ok, with_(CFG, "optimizer", lr=0.2)) == RunState(
        "another config", 3, 3, "optimizer.lr: 0.1 -> 0.2")
    # more epochs under a constant schedule continue the run, as should_resume decides
    grown = epochs(lay(tmp_path / "grown"), 3)
    assert state_of(grown, with_(CFG, "train", epochs=5)) == RunState("stopped", 3, 5)
    # a finished record without its config.json is no run of this config: it trains again
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "metrics.json").write_text(json.dumps({"status": "ok"}))
    assert state_of(tmp_path / "bare", CFG) == RunState("not started", 0, 3, "starts over")
    # a failure without a checkpoint starts over (another config's too); with one, continues
    failed = lay(tmp_path / "bad", config=with_(CFG, "optimizer", lr=0.2), checkpoint=False)
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    assert state_of(failed, CFG) == RunState("failed", 0, 3, "boom")
    lay(failed, config=CFG)
    assert state_of(epochs(failed, 1), CFG) == RunState("stopped", 1, 3, "boom")
    (failed / "metrics.json").write_text("{not json")
    assert state_of(failed, CFG) == RunState("stopped", 1, 3)
    assert holder(ok) is None
    with held(ok):  # this process
        assert state_of(ok, CFG).state == "training"
    with other_process_holding(ok) as pid:
        assert holder(ok).startswith(f"pid {pid} on ")
        assert state_of(ok, CFG) == RunState("training", 3, 3, holder(ok))
    assert holder(ok) is None  # the probe held nothing


def test_taking_the_lock_waits_out_a_probe(tmp_path, monkeypatch):
    """`holder` holds the lock shared for a moment: a run starting then retries, not refuses."""
    import fcntl

    real, calls = fcntl.flock, []

    def probed_once(fd, op):
        calls.append(op)
        if len(calls) == 1:
            raise BlockingIOError("held shared by a probe")
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", probed_once)
    with held(tmp_path):
        pass
    assert len(calls) >= 2  # refused once, then taken (and released)


def test_one_flatten_indexes_layer_lists_for_loggers_and_keeps_them_whole_for_identity():
    from cnn_jax.flat import flatten

    config = {"model": {"conv": [{"features": 20}, {"features": 40}], "dense": []},
              "optimizer": {"lr": 0.1}}
    assert flatten(config) == {"model.conv.0.features": 20, "model.conv.1.features": 40,
                               "model.dense": [], "optimizer.lr": 0.1}
    assert flatten(config, index_lists=False) == {
        "model.conv": [{"features": 20}, {"features": 40}], "model.dense": [],
        "optimizer.lr": 0.1}
