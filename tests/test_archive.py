"""cnn_jax.results.archive: finished runs' records kept without checkpoints, restored where no
run is, and counted as finished there."""

from __future__ import annotations

import json
from pathlib import Path

from cnn_jax.results import archive, rundir

CONFIG = {"seed": 0, "train": {"epochs": 2, "resume": "auto"}}


def fake_run(run_dir: Path, status: str | None, config: dict = CONFIG) -> None:
    """A run dir with every file a run leaves; metrics.json only when `status` is given."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run_dir / "train.log").write_text("epoch 1\n")
    (run_dir / "checkpoints" / "2").mkdir(parents=True)
    (run_dir / "checkpoints" / "2" / "state").write_bytes(b"\0" * 100)
    (run_dir / "tb").mkdir()
    (run_dir / "tb" / "events").write_bytes(b"\1")
    if status:
        (run_dir / "metrics.json").write_text(json.dumps({"status": status}))
        (run_dir / "test_errors.json").write_text('{"images": 10, "seeds": [0], "errors": []}')


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_keep_copies_the_records_of_finished_runs_only_without_checkpoints(tmp_path):
    runs, kept = tmp_path / "runs", tmp_path / "kept"
    fake_run(runs / "sweep" / "0", "ok")
    fake_run(runs / "sweep" / "1", "diverged")
    fake_run(runs / "sweep" / "2", "failed")
    fake_run(runs / "sweep" / "10", None)  # stopped: its checkpoint is what it continues from
    fake_run(runs / "single", "ok")
    assert archive.keep(runs, kept) == [Path("single"), Path("sweep/0"), Path("sweep/1")]
    record = ["config.json", "metrics.json", "metrics.jsonl", "test_errors.json"]
    assert files(kept) == sorted(f"{d}/{f}" for d in ("single", "sweep/0", "sweep/1")
                                 for f in record)
    assert (kept / "sweep/0/metrics.jsonl").read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    # keeping again rewrites nothing that did not change (an atomic write is a new inode),
    # replaces what did, and drops what the run no longer has
    inode = (kept / "single/config.json").stat().st_ino
    (runs / "single" / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (runs / "single" / "test_errors.json").unlink()
    archive.keep(runs / "single", kept / "single")
    assert (kept / "single/config.json").stat().st_ino == inode
    assert (kept / "single/metrics.jsonl").read_text() == '{"epoch": 1}\n'
    assert not (kept / "single/test_errors.json").exists()


def test_restore_fills_only_dirs_without_a_run_and_the_run_counts_as_finished(tmp_path):
    runs, kept, new = tmp_path / "runs", tmp_path / "kept", tmp_path / "new"
    for job in ("0", "1", "2", "3", "4"):
        fake_run(runs / job, "ok", {**CONFIG, "seed": int(job)})
    archive.keep(runs, kept)
    configs = {Path(job): {**CONFIG, "seed": int(job)} for job in ("0", "1", "2", "3")}
    configs[Path("4")] = {**CONFIG, "seed": 9}  # the run to come there is another config's
    # in the new runs dir: job 1 has a run of its own (another seed), job 2 only a checkpoint
    fake_run(new / "1", None, {**CONFIG, "seed": 7})
    (new / "2" / "checkpoints").mkdir(parents=True)
    (new / "3").mkdir()  # an empty dir (a job Hydra made, never trained) is no run
    assert archive.restore(kept, new, configs) == [Path("0"), Path("3")]
    assert not (new / "4").exists()
    assert json.loads((new / "1" / "config.json").read_text())["seed"] == 7
    assert not (new / "2" / "config.json").exists()
    for job in ("0", "3"):
        state = rundir.state_of(new / job, {**CONFIG, "seed": int(job)})
        assert (state.state, state.epochs_done) == ("finished", 2)
    assert rundir.finished(new / "0", {**CONFIG, "seed": 1}) is None  # another config's run
    assert archive.restore(tmp_path / "nothing", tmp_path / "new2", configs) == []
