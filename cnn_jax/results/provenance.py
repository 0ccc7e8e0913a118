"""Where a run came from: the `provenance` block of metrics.json.

git_commit, git_dirty and git_diff_sha256 (of `git diff HEAD` and the untracked, not ignored
Python and YAML files, only when dirty) describe the checkout the code was imported from;
outside a git checkout (or without git) they are None. command is the full command line,
versions the Python and array-stack versions, device_kind the first JAX device's kind,
cpu_model the processor and usable_cores how many cores the process could use (XLA:CPU's
results differ between one and two: docs/reproducibility.md), xla_flags $XLA_FLAGS, hostname,
started_at an ISO-8601 UTC time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnn_jax.cpus import cpu_model, usable_cores

PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy")
# untracked files that make a checkout dirty, anywhere in it: code and config a run may have used
# (not what Hydra and its sweepers write into run and sweep dirs)
UNTRACKED_SOURCES = (":(top,glob)**/*.py", ":(top,glob)**/*.yaml", ":(top,glob)**/*.yml",
                     ":(top,exclude,glob)**/.hydra/**", ":(top,exclude,glob)**/multirun.yaml",
                     ":(top,exclude,glob)**/optimization_results.yaml")
SOURCE_DIR = Path(__file__).resolve().parent


def _git(args: Sequence[str], cwd: Path) -> str | None:
    """stdout of `git args` in cwd, or None when git is missing or the command fails."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else None


def git_state(path: str | os.PathLike = SOURCE_DIR) -> dict[str, Any]:
    """git_commit, git_dirty, git_diff_sha256 of the checkout holding `path` (Nones outside one)."""
    cwd = Path(path)
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_diff_sha256": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    listed = _git(["ls-files", "-z", "--others", "--exclude-standard", "--full-name", "--",
                   *UNTRACKED_SOURCES], cwd) or ""
    untracked = sorted(name for name in listed.split("\0") if name)
    dirty = bool(status.strip()) or bool(untracked)
    if not dirty:
        return {"git_commit": commit.strip(), "git_dirty": False, "git_diff_sha256": None}
    digest = hashlib.sha256((_git(["diff", "HEAD", "--no-ext-diff", "--binary"], cwd) or "")
                            .encode())
    top = Path((_git(["rev-parse", "--show-toplevel"], cwd) or str(cwd)).strip())
    for name in untracked:  # a new experiment file or plugin module counts with its content
        digest.update(f"\0{name}\0".encode())
        digest.update((top / name).read_bytes() if (top / name).is_file() else b"")
    return {"git_commit": commit.strip(), "git_dirty": True, "git_diff_sha256": digest.hexdigest()}


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Python's version and each installed package's (None when it is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_kind() -> str | None:
    """The first JAX device's kind ("cpu", "NVIDIA H100 80GB HBM3", ...)."""
    import jax

    devices = jax.devices()
    return str(devices[0].device_kind) if devices else None


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that started this process, shell-quoted: `python -m experiments.train ...`."""
    argv = list(sys.argv if argv is None else argv)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if argv and spec is not None and spec.name and argv[0].endswith(".py"):
        argv = ["-m", spec.name.removesuffix(".__main__"), *argv[1:]]
    return shlex.join([Path(sys.executable).name, *argv])


def provenance(argv: Sequence[str] | None = None,
               source: str | os.PathLike = SOURCE_DIR) -> dict[str, Any]:
    """The provenance record of a run started now by `argv` from the code at `source`."""
    return {
        **git_state(source),
        "command": command_line(argv),
        "versions": versions(),
        "device_kind": device_kind(),
        "cpu_model": cpu_model(),
        "usable_cores": usable_cores(),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "hostname": socket.gethostname(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
