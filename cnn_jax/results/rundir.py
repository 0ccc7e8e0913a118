"""What a run dir already holds decides whether a run resumes, is skipped, or starts over.

A run's identity is its resolved config (config.json), not the command line: two runs are the
same when their configs differ only in RUNTIME_KEYS, which do not change what is computed.
One process at a time trains in a run dir (`held`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cnn_jax.config import ConfigError
from cnn_jax.results.records import CONFIG, FINISHED, METRICS, RUNTIME_KEYS, read_metrics

CHECKPOINTS = "checkpoints"
log = logging.getLogger(__name__)


class RunDirTaken(ConfigError):
    """The run dir holds a checkpoint or finished run of another config: the run leaves its
    records, checkpoints and logger files as they are."""


class RunDirInUse(RunDirTaken):
    """Another process is training in the run dir now (two launches of one sweep, say)."""


LOCK = ".lock"  # in the run dir: the file the lock is taken on, naming its holder
_HELD: set[Path] = set()  # the run dirs this process holds


def _holder(lock_file: Path) -> str:
    try:
        return lock_file.read_text().strip() or "another process"
    except OSError:
        return "another process"


def _lock(lock_file: Path, run_dir: str | Path) -> int | None:
    """The descriptor of lock_file, flocked and naming this process; None (with a warning) where
    the file system has no locks (ENOLCK, ENOSYS, a read-only dir); RunDirInUse when held."""
    import fcntl

    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.warning("%s: no run dir lock (%s); running without one", run_dir, exc)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirInUse(f"{run_dir}: {_holder(lock_file)} is training in this run dir; "
                          "wait for it to end, or choose another run dir") from None
    except OSError as exc:
        os.close(fd)
        log.warning("%s: no run dir lock (%s); running without one", run_dir, exc)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    return fd


@contextlib.contextmanager
def held(run_dir: str | Path) -> Iterator[None]:
    """Hold the existing dir run_dir for this process while the block runs; held by another
    process, a one-line RunDirInUse naming it. Holding it again inside the block is free.

    The lock is the OS's advisory lock (flock) on run_dir/.lock, which names its holder (pid and
    host): it ends with its process, however that ends, so a killed run's dir is free for its
    resume; over NFS it holds across machines. Where the file system has no locks (ENOLCK,
    ENOSYS, a read-only dir), a warning, and the block runs unlocked; on Windows (no flock), no
    lock.
    """
    path = Path(run_dir).resolve()
    fd = None if path in _HELD or os.name == "nt" else _lock(path / LOCK, run_dir)
    if fd is None:
        yield
        return
    _HELD.add(path)
    try:
        yield
    finally:
        _HELD.discard(path)
        os.close(fd)  # closing the last descriptor releases the lock


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                ignore: tuple[str, ...] = RUNTIME_KEYS) -> list[str]:
    """'optimizer.lr: 0.1 -> 0.2' for every key whose value differs (JSON-normalised)."""
    a = _flat(json.loads(json.dumps(saved, default=str)))
    b = _flat(json.loads(json.dumps(current, default=str)))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys())
            if k not in ignore and a.get(k) != b.get(k)]


def saved_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The config.json a previous run left in run_dir, or None."""
    path = Path(run_dir) / CONFIG
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


def has_checkpoint(run_dir: str | Path) -> bool:
    """True when run_dir holds a saved epoch to continue from."""
    path = Path(run_dir) / CHECKPOINTS
    return path.is_dir() and any(p.name.isdigit() for p in path.iterdir())


def finished(run_dir: str | Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The metrics.json of a run of this same config that finished (ok or diverged), else None."""
    try:
        metrics = read_metrics(run_dir)
    except (OSError, ValueError):
        return None
    saved = saved_config(run_dir)
    if not metrics or metrics.get("status") not in FINISHED or saved is None:
        return None
    return None if differences(saved, config) else metrics


def should_resume(run_dir: str | Path, config: Mapping[str, Any], resume: Any) -> bool:
    """Whether a run of `config` continues from run_dir's checkpoint.

    resume=False: never (start over). True: whenever there is a checkpoint. "auto": when there is
    one of the same config; a checkpoint or finished record of another config is a one-line
    ConfigError (train.epochs may grow under a constant schedule: the extra epochs continue it;
    fewer epochs are another config, since the saved run may already be past them).
    """
    if resume is False:
        return False
    saved, checkpoint = saved_config(run_dir), has_checkpoint(run_dir)
    if resume is True or saved is None:
        return checkpoint
    metrics = read_metrics(run_dir) if (Path(run_dir) / METRICS).is_file() else None
    if not checkpoint and (metrics or {}).get("status") not in FINISHED:
        return False  # nothing worth keeping: a failed or never-started run
    constant = config.get("optimizer", {}).get("schedule") == "constant"
    grows = saved.get("train", {}).get("epochs", 0) <= config.get("train", {}).get("epochs", 0)
    ignore = RUNTIME_KEYS + (("train.epochs",) if constant and grows else ())
    diff = differences(saved, config, ignore)
    if diff:
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        raise RunDirTaken(f"{run_dir} holds a run of another config ({diff[0]}{more}); "
                          "train.resume=false starts it over, or choose another run dir")
    return checkpoint
