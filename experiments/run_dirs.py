"""Where a command's run (or sweep) goes by default: a dir named by what it computes.

`hydra.run.dir` is `outputs/<experiment or model>/<config id>`, the id a hash of the validated
config (`rundir.config_id`: runtime keys and default values left out), so running the same
command again finds its own run dir, continues an unfinished run there and skips a finished
one. `hydra.sweep.dir` is `multirun/<experiment or "sweep">/<id of the command's overrides>`,
so a relaunched sweep finds its jobs (each job dir then decides as a run dir does).
`train.resume=false` asks for a new run: its dir gets the start time as a suffix instead. A
`latest` link beside the dirs names the last one a command used.

The resolvers are registered when this module is imported (the CLI and `compose` import it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

RUN_DIR_RESOLVER = "cnn_jax.run_dir"
SWEEP_DIR_RESOLVER = "cnn_jax.sweep_dir"
LATEST = "latest"


def _task_config(root: DictConfig) -> dict[str, Any]:
    """The composed config without its `hydra` node, resolved to plain values."""
    keys = [k for k in root if k != "hydra"]
    return OmegaConf.to_container(OmegaConf.masked_copy(root, keys), resolve=True)


def _choice(root: DictConfig, group: str) -> str | None:
    choices = OmegaConf.select(root, "hydra.runtime.choices", default=None) or {}
    value = choices.get(group)
    return None if value in (None, "null") else str(value)


def _fresh_suffix(task: dict[str, Any]) -> str:
    """'' normally; '-<start time>' when train.resume=false asks for a new run."""
    resume = (task.get("train") or {}).get("resume", "auto")
    return time.strftime("-%Y%m%d-%H%M%S") if resume is False else ""


def run_dir_name(*, _root_: DictConfig) -> str:
    """`<experiment or model>/<config id>` of the composed config (Hydra's `_root_`)."""
    from cnn_jax.config import ConfigError, from_mapping, to_dict
    from cnn_jax.results.rundir import config_id

    task = _task_config(_root_)
    try:
        identity = to_dict(from_mapping(task))
    except ConfigError:  # refused later with its one-line error; any name will do until then
        identity = task
    name = _choice(_root_, "experiment") or _choice(_root_, "model") or "run"
    return f"{name}/{config_id(identity)}{_fresh_suffix(task)}"


def sweep_dir_name(*, _root_: DictConfig) -> str:
    """`<experiment or "sweep">/<id of the command line's task overrides>`."""
    from cnn_jax.results.rundir import config_id

    overrides = sorted(str(o) for o in OmegaConf.select(_root_, "hydra.overrides.task",
                                                        default=[]) or [])
    task = _task_config(_root_)
    name = _choice(_root_, "experiment") or "sweep"
    return f"{name}/{config_id({'overrides': overrides})}{_fresh_suffix(task)}"


def link_latest(run_dir: str | Path) -> None:
    """Point `latest` beside run_dir at it (replaced atomically; skipped where links fail)."""
    run_dir = Path(run_dir)
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)


def register() -> None:
    OmegaConf.register_new_resolver(RUN_DIR_RESOLVER, run_dir_name, replace=True)
    OmegaConf.register_new_resolver(SWEEP_DIR_RESOLVER, sweep_dir_name, replace=True)


register()
