"""What a run dir already holds decides whether a run resumes, is skipped, or starts over.

A run's identity is its resolved config (config.json), not the command line: two runs are the
same when their configs differ only in RUNTIME_KEYS, which do not change what is computed.
One process at a time trains in a run dir (`held`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_jax.config import ConfigError
from cnn_jax.errors import setting
from cnn_jax.flat import flatten
from cnn_jax.results.records import (
    CONFIG,
    EPOCHS,
    FINISHED,
    METRICS,
    RUNTIME_KEYS,
    read_epochs,
    read_metrics,
)

CHECKPOINTS = "checkpoints"
log = logging.getLogger(__name__)


class RunDirTaken(ConfigError):
    """The run dir holds a checkpoint or finished run of another config: the run leaves its
    records, checkpoints and logger files as they are."""


class RunDirInUse(RunDirTaken):
    """Another process is training in the run dir now (two launches of one sweep, say)."""


LOCK = ".lock"  # in the run dir: the file the lock is taken on, naming its holder
_HELD: set[Path] = set()  # the run dirs this process holds
LOCK_RETRIES = (0.0, 0.05, 0.25)  # seconds before each try to take a run dir's lock


def _this_process() -> str:
    """How a lock names its holder: "pid N on HOST"."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


def _lock_text(lock_file: Path) -> str:
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
    for wait in LOCK_RETRIES:  # a `holder` probe holds the lock shared for a moment
        time.sleep(wait)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            continue
        except OSError as exc:
            os.close(fd)
            log.warning("%s: no run dir lock (%s); running without one", run_dir, exc)
            return None
    else:
        os.close(fd)
        raise RunDirInUse(f"{run_dir}: {_lock_text(lock_file)} is training in this run dir; "
                          "wait for it to end, or choose another run dir")
    os.ftruncate(fd, 0)
    os.write(fd, f"{_this_process()}\n".encode())
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


def holder(run_dir: str | Path) -> str | None:
    """Who trains in run_dir now ("pid N on HOST"), None when no process holds its lock (or
    where there are no locks). Probing takes the lock shared for a moment, never blocking."""
    path = Path(run_dir).resolve()
    if path in _HELD:
        return _this_process()
    if os.name == "nt" or not (path / LOCK).is_file():
        return None
    import fcntl

    try:
        fd = os.open(path / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _lock_text(path / LOCK)
    except OSError:
        return None
    finally:
        os.close(fd)  # releases the shared lock, if taken
    return None


@dataclass(frozen=True)
class RunState:
    """Where a run dir stands for a config: `state` is one of STATES; the epochs a run of the
    config continues after (0 where it trains from its first), of those planned."""

    state: str
    epochs_done: int
    epochs_planned: int | None
    detail: str = ""  # a training run's holder, a failure's error, another config's first key


STATES = ("training", "finished", "diverged", "another config", "stopped", "failed",
          "not started")


def state_of(run_dir: str | Path, config: Mapping[str, Any] | None = None) -> RunState:
    """What a run of `config` launched into run_dir meets, read from its lock and records alone:
    another process training there; a finished (or diverged) run it skips; another config's run
    that refuses it; a stopped run it continues; a failed or no run, where it trains from its
    first epoch. The same rules as the run (`finished`, `should_resume`); without `config`, the
    run's own config.json stands for it."""
    run_dir = Path(run_dir)
    saved = saved_config(run_dir)
    config = config if config is not None else (saved or {})
    train = config.get("train", {})
    planned, resume = train.get("epochs"), train.get("resume", "auto")
    who = holder(run_dir)
    if who:
        return RunState("training", epochs_recorded(run_dir), planned, who)
    done = finished(run_dir, config) if resume is not False else None
    if done:
        state = "finished" if done["status"] == "ok" else done["status"]
        return RunState(state, done.get("epochs", planned), planned)
    try:
        resumes = should_resume(run_dir, config, resume)
    except RunDirTaken:
        return RunState("another config", epochs_recorded(run_dir), planned,
                        differences(saved, config)[0])
    error = _failure(run_dir)
    if resumes and train.get("checkpoint", True):
        return RunState("stopped", epochs_recorded(run_dir), planned, error or "")
    if error is not None:
        return RunState("failed", 0, planned, error)
    leftover = any((run_dir / name).exists() for name in (CONFIG, METRICS, EPOCHS))
    return RunState("not started", 0, planned, "starts over" if leftover else "")


def epochs_recorded(run_dir: str | Path) -> int:
    """How many epochs run_dir's metrics.jsonl records (0 where it has none or is unreadable)."""
    try:
        return len(read_epochs(run_dir))
    except (OSError, ValueError):
        return 0


def _failure(run_dir: Path) -> str | None:
    """The error of a failed run's record in run_dir, else None."""
    metrics = _record(run_dir) or {}
    return str(metrics.get("error") or "failed") if metrics.get("status") == "failed" else None


def _record(run_dir: str | Path) -> dict[str, Any] | None:
    """run_dir's metrics.json; None where there is none or it cannot be read (no run of any
    config finished there)."""
    try:
        return read_metrics(run_dir)
    except (OSError, ValueError):
        return None


def _flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config's keys, dotted, its values JSON-normalised (tuples as lists); a list of
    layers stays one value (compared whole)."""
    return flatten(json.loads(json.dumps(config, default=str)), index_lists=False)


# The defaults run identities are measured from, where a schema default has changed since ids
# were first given: those keys keep their earlier default here, so every id (and every kept
# record's missing key) means what it meant. A default changed later is added here, never edited.
ID_BASE_CHANGED: dict[str, Any] = {
    "model.conv": [], "model.dense": [{"units": 100, "dropout": 0.0}],
    "model.activation": "sigmoid", "model.init": "nielsen", "model.name": "convnet",
    "optimizer.name": "sgd", "optimizer.lr": 0.1, "optimizer.momentum": 0.9,
    "optimizer.schedule": "constant", "train.epochs": 1, "train.batch_size": 10,
}


@functools.cache
def _schema_defaults() -> dict[str, Any]:
    """Every config key's identity default, flat ('train.vote': False): the schema's default,
    or its earlier one from ID_BASE_CHANGED."""
    from cnn_jax.config import Config, to_dict

    return {**_flat_config(to_dict(Config())), **ID_BASE_CHANGED}


def differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                ignore: tuple[str, ...] = RUNTIME_KEYS) -> list[str]:
    """'optimizer.lr: 0.1 -> 0.2' for every key whose value differs (JSON-normalised); a key
    one side lacks stands for its schema default there (a key added since a run was made
    leaves that run's identity as it was, unless the other side sets it otherwise)."""
    a = _flat_config(saved)
    b = _flat_config(current)
    defaults = _schema_defaults()
    keys = sorted(a.keys() | b.keys())
    old = {k: a.get(k, defaults.get(k)) for k in keys}
    new = {k: b.get(k, defaults.get(k)) for k in keys}
    return [f"{k}: {old[k]!r} -> {new[k]!r}" for k in keys if k not in ignore and old[k] != new[k]]


def config_id(config: Mapping[str, Any], length: int = 10) -> str:
    """A short, stable name of a run's identity: the hash of the keys whose values differ from
    the schema's defaults, less RUNTIME_KEYS. Equal for configs that `differences` finds
    equal, so the same command (in any spelling) names the same run dir; a key added to the
    schema later leaves every existing name as it was."""
    import hashlib

    flat = _flat_config(config)
    defaults = _schema_defaults()
    kept = {k: v for k, v in flat.items()
            if k not in RUNTIME_KEYS and (k not in defaults or defaults[k] != v)}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


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
    metrics = _record(run_dir)
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
    metrics = _record(run_dir)
    if not checkpoint and (metrics or {}).get("status") not in FINISHED:
        return False  # nothing worth keeping: a failed or never-started run
    constant = config.get("optimizer", {}).get("schedule") == "constant"
    grows = saved.get("train", {}).get("epochs", 0) <= config.get("train", {}).get("epochs", 0)
    ignore = RUNTIME_KEYS + (("train.epochs",) if constant and grows else ())
    diff = differences(saved, config, ignore)
    if diff:
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        raise RunDirTaken(f"{run_dir} holds a run of another config ({diff[0]}{more}); "
                          f"{setting('train.resume', False)} starts it over, or choose "
                          "another run dir")
    return checkpoint


@dataclass(frozen=True)
class Plan:
    """What a run of a config does in its run dir: "skip" a finished run of it (`finished`:
    its metrics.json), "resume" its checkpoint, or start "fresh" (whatever an earlier run of
    it left is removed)."""

    action: str
    finished: dict[str, Any] | None = None


def prepare(run_dir: str | Path, config: Mapping[str, Any]) -> Plan:
    """The one decision of a run about its dir (the dir held by this process): `finished`,
    then `should_resume` under the config's train.resume; RunDirTaken (a one-line error) for
    a dir that holds another config's run."""
    train = config.get("train", {})
    resume = train.get("resume", "auto")
    done = finished(run_dir, config) if resume is not False else None
    if done:
        return Plan("skip", finished=done)
    if should_resume(run_dir, config, resume) and train.get("checkpoint", True):
        return Plan("resume")
    return Plan("fresh")

