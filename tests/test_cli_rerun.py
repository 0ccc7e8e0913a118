"""The same command continues the same run: run dirs named by the config, a clean stop on
SIGINT / SIGTERM, and a rerun that ends as an uninterrupted run would."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=nielsen_conv1", "data.train_limit=2000", "train.batch_size=50", "train.epochs=3",
        "logger=none", "train.progress=false"]


def command(mnist_dir, *extra):
    return [sys.executable, "-m", "experiments.train", *TINY, f"data.dir={mnist_dir}", *extra]


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run(cwd, mnist_dir, *extra):
    return subprocess.run(command(mnist_dir, *extra), cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=600)


def numbers(run_dir):
    """What a run computed, per epoch and per seed (no timings)."""
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    per_seed = json.loads((run_dir / "metrics.json").read_text())["per_seed"]
    return ([{k: e[k] for k in ("epoch", "train_loss", "val_acc", "test_acc")} for e in epochs],
            per_seed)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_dir):
    where = tmp_path_factory.mktemp("whole")
    proc = run(where, mnist_dir, f"hydra.run.dir={where / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return numbers(where / "run")


def test_rerunning_a_finished_command_trains_nothing_and_resume_false_starts_anew(
        tmp_path, mnist_dir):
    first = run(tmp_path, mnist_dir, "seed=3", "train.epochs=1")
    assert first.returncode == 0, first.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "nielsen_conv1").glob("[0-9a-f]*")
    assert (tmp_path / "outputs" / "nielsen_conv1" / "latest").resolve() == run_dir.resolve()
    record = (run_dir / "metrics.json").read_text()
    # the same config in another spelling (a default made explicit, a runtime key) is the same
    again = run(tmp_path, mnist_dir, "train.epochs=1", "seed=3", "train.shuffle=true",
                "train.compile_cache=null")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"run_dir={run_dir}" in again.stdout and "(finished earlier)" in again.stdout
    assert "epoch 1/1" not in again.stdout + again.stderr
    assert (run_dir / "metrics.json").read_text() == record
    fresh = run(tmp_path, mnist_dir, "seed=3", "train.epochs=1", "train.resume=false")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    dirs = sorted((tmp_path / "outputs" / "nielsen_conv1").glob("[0-9a-f]*"))
    assert len(dirs) == 2 and dirs[1].name.startswith(f"{run_dir.name}-")
    assert (run_dir / "metrics.json").read_text() == record  # the first run is kept


def _wait_for(path: Path, text: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.is_file() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {text!r}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


@pytest.mark.parametrize("signum,code", [
    (signal.SIGINT, 130), (signal.SIGTERM, 143),
    pytest.param(signal.SIGKILL, -signal.SIGKILL, marks=pytest.mark.slow)])
def test_a_signal_stops_cleanly_and_the_same_command_continues_to_the_same_end(
        tmp_path, mnist_dir, uninterrupted, signum, code):
    proc = subprocess.Popen(command(mnist_dir), cwd=tmp_path, env=env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = tmp_path / "outputs" / "nielsen_conv1"
    while not list(log.glob("[0-9a-f]*/train.log")) and proc.poll() is None:
        time.sleep(0.05)
    (train_log,) = log.glob("[0-9a-f]*/train.log")
    _wait_for(train_log, "epoch 1/3:", proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    run_dir = train_log.parent
    if signum != signal.SIGKILL:  # a clean stop says where; a killed run leaves no record
        assert err.strip().splitlines()[-1].startswith("stopped at epoch 2/3 (step ")
        assert err.strip().endswith("; run the same command to continue")
        record = json.loads((run_dir / "metrics.json").read_text())
        assert record["status"] == "interrupted" and record["epochs"] == 1
    again = run(tmp_path, mnist_dir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming {run_dir} at epoch 2/3" in again.stdout + again.stderr
    assert numbers(run_dir) == uninterrupted
