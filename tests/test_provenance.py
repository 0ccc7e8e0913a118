"""Provenance: git state of a checkout (clean, dirty, none), command line, versions."""

import os
import subprocess
import sys

import pytest

from cnn_jax.results import provenance


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@t")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-qm", "one")
    return tmp_path


def head(repo):
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_clean_checkout_records_its_commit_and_no_diff(repo):
    state = provenance.git_state(repo)
    assert state == {"git_commit": head(repo), "git_dirty": False, "git_diff_sha256": None}


def test_dirty_checkout_records_a_hash_that_follows_the_diff(repo):
    (repo / "a.py").write_text("x = 2\n")
    first = provenance.git_state(repo)
    assert first["git_dirty"] is True and len(first["git_diff_sha256"]) == 64
    (repo / "a.py").write_text("x = 3\n")
    assert provenance.git_state(repo)["git_diff_sha256"] != first["git_diff_sha256"]


def test_an_untracked_source_file_makes_it_dirty_but_a_run_dir_does_not(repo):
    run = repo / "runs" / "r1"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("lr: 0.1\n")
    (run / "metrics.json").write_text("{}")
    (run.parent / "multirun.yaml").write_text("hydra: {}\n")
    (repo / "pkg").mkdir()  # where the code is imported from: not where the new file is
    assert provenance.git_state(repo / "pkg")["git_dirty"] is False
    (repo / "conf").mkdir()
    (repo / "conf" / "mine.yaml").write_text("lr: 0.2\n")  # a new experiment file, not added
    first = provenance.git_state(repo / "pkg")
    assert first["git_dirty"] is True and len(first["git_diff_sha256"]) == 64
    (repo / "conf" / "mine.yaml").write_text("lr: 0.3\n")
    assert provenance.git_state(repo)["git_diff_sha256"] != first["git_diff_sha256"]


def test_outside_a_checkout_records_nulls(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    assert provenance.git_state(tmp_path / "plain") == {
        "git_commit": None, "git_dirty": None, "git_diff_sha256": None}


def test_without_git_on_path_records_nulls(repo, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert provenance.git_state(repo)["git_commit"] is None


def test_record_has_every_field(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    record = provenance.provenance(["train.py", "train.epochs=1"])
    assert set(record) == {"git_commit", "git_dirty", "git_diff_sha256", "command", "versions",
                           "device_kind", "cpu_model", "usable_cores", "xla_flags", "hostname",
                           "started_at"}
    assert record["command"].endswith("train.epochs=1")
    assert record["cpu_model"] and record["usable_cores"] == len(os.sched_getaffinity(0))
    assert set(record["versions"]) == {"python", "jax", "jaxlib", "flax", "optax", "numpy"}
    assert all(record["versions"].values())
    assert record["device_kind"] and record["xla_flags"] == "--xla_dump_to=/tmp/x"
    assert record["started_at"].endswith("+00:00")


def test_command_line_quotes_arguments():
    line = provenance.command_line(["prog", "hydra.run.dir=a b", "x=1"])
    assert line == f"{provenance.Path(sys.executable).name} prog 'hydra.run.dir=a b' x=1"
