"""The research workflow through the CLI: runs that resume by themselves after SIGKILL or a
submitit preemption, and a config mismatch in a run dir (the Optuna search: test_search.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cnn_jax.results.rundir import LOCK, has_checkpoint

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=nielsen_conv1", "optimizer=sgd", "activation=sigmoid", "train.batch_size=50",
        "train.progress=false", "train.eval_batch_size=1000"]


def train(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def epochs_of(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen) -> None:
    """Until the run has saved its first epoch (orbax renames a finished step dir into place)."""
    while not has_checkpoint(run_dir):
        assert proc.poll() is None, "the run ended before it was interrupted"
        time.sleep(0.05)


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path, mnist_dir):
    args = [*TINY, "train.epochs=3", "data.train_limit=2000", f"data.dir={mnist_dir}"]
    whole = train(*args, f"hydra.run.dir={tmp_path / 'whole'}", "logger=[tensorboard,csv]")
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert (tmp_path / "whole" / "csv" / "metrics.csv").exists()
    assert list((tmp_path / "whole" / "tb").glob("events.out.tfevents.*"))

    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "experiments.train", *args, f"hydra.run.dir={cut}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_checkpoint(cut, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not (cut / "metrics.json").exists()
    again = train(*args, f"hydra.run.dir={cut}")  # the same command
    assert again.returncode == 0, again.stderr[-2000:]
    metrics = json.loads((cut / "metrics.json").read_text())
    assert metrics["resumed_from"] in (1, 2) and metrics["epochs"] == 3
    assert epochs_of(cut) == epochs_of(tmp_path / "whole")
    done = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["per_seed"] == done["per_seed"] and done["resumed_from"] is None


def test_another_config_in_the_run_dir_is_one_line_unless_resume_false(tmp_path, mnist_dir):
    args = [*TINY, "train.epochs=1", "data.train_limit=500", f"data.dir={mnist_dir}",
            f"hydra.run.dir={tmp_path}", "logger=none"]
    assert train(*args).returncode == 0
    again = train(*args)
    assert again.returncode == 0 and "(finished earlier)" in again.stdout
    other = train(*args[:-1], "logger=csv", "optimizer.lr=0.2")
    assert other.returncode == 2
    (line,) = other.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and "holds a run of another config" in line
    assert "optimizer.lr: 0.1 -> 0.2" in line and "train.resume=false" in line
    kept = json.loads((tmp_path / "metrics.json").read_text())  # the refused dir is untouched
    assert kept["status"] == "ok" and not (tmp_path / "csv").exists()  # nor a logger's files
    fresh = train(*args, "optimizer.lr=0.2", "train.resume=false")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["optimizer"]["lr"] == 0.2
    rerun = train(*args, "optimizer.lr=0.2", "train.resume=false")  # false: even a finished run
    assert rerun.returncode == 0 and "finished earlier" not in rerun.stdout
    assert "ok: " in rerun.stdout


def test_a_run_dir_another_process_trains_in_is_one_line_and_left_alone(
        tmp_path, mnist_dir, other_process_holding):
    args = [*TINY, "train.epochs=1", "data.train_limit=500", f"data.dir={mnist_dir}",
            f"hydra.run.dir={tmp_path}", "logger=csv"]
    with other_process_holding(tmp_path) as pid:
        busy = train(*args)
        # a bad value is refused before the run starts: nothing at all goes into the dir
        before = {p.name for p in tmp_path.iterdir()}
        bad = train(*args, "optimizer.lr=-1")
        assert bad.returncode == 2 and {p.name for p in tmp_path.iterdir()} == before
        assert bad.stderr.strip() == "error: optimizer.lr=-1 must be a number > 0"
    assert busy.returncode == 2, busy.stderr[-2000:]
    (line,) = busy.stderr.strip().splitlines()[-1:]
    assert line == (f"error: {tmp_path}: pid {pid} on {socket.gethostname()} is training in this "
                    "run dir; wait for it to end, or choose another run dir")
    written = {p.name for p in tmp_path.iterdir()} - {".hydra", "train.log", LOCK}
    assert written == set()  # no record, config, checkpoint or logger files


def submitit_tasks(folder: Path) -> list[int]:
    """Pids of the submitit task processes whose job folder is under `folder`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"submitit.core._submit" in cmdline and any(str(folder).encode() in a for a in cmdline):
            pids.append(int(proc.name))
    return pids


def test_submitit_preempted_job_requeues_and_resumes(tmp_path, mnist_dir):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "experiments.train", "-m", *TINY, "train.epochs=3",
           "data.train_limit=3000", f"data.dir={mnist_dir}", "hydra/launcher=submitit_local",
           "hydra.launcher.timeout_min=10", f"hydra.sweep.dir={sweep}", "seed=5", "logger=none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for_checkpoint(sweep / "0", proc)
        (pid,) = submitit_tasks(sweep)
        os.kill(pid, signal.SIGUSR2)  # what a cluster sends before preempting or timing out
        out, err = proc.communicate(timeout=900)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 3
    assert metrics["resumed_from"] in (1, 2)
    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))
    assert "preempted" in logs and "Requeued" in logs
