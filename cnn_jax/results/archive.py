"""Finished runs' records without their checkpoints: kept beside the published results, so the
tables regenerate from the repository, and restored into a new runs dir, where each run then
counts as finished (`rundir.finished`) and is skipped instead of trained again (restored only
where the run to come has the kept run's config).

An archive mirrors a runs dir: ARCHIVE/<path of the run dir under RUNS>/ holds the KEPT files
of every run dir under RUNS whose metrics.json says it trained to its end (ok or diverged).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnn_jax.atomic import write_atomic
from cnn_jax.results import records
from cnn_jax.results.rundir import CHECKPOINTS, finished

# what a finished run is read from: its config, records (metrics.json holds its overrides) and
# test errors (for a vote); not .hydra/, which a later launch refused for another config rewrites
KEPT = (records.CONFIG, records.METRICS, records.EPOCHS, records.TEST_ERRORS)


def finished_runs(root: str | os.PathLike) -> list[Path]:
    """The run dirs under `root` (itself included) that trained to their end, in path order."""
    root = Path(root)
    found = [m.parent for m in root.rglob(records.METRICS) if ".hydra" not in m.parts]
    return sorted(d for d in found
                  if (records.read_metrics(d) or {}).get("status") in records.FINISHED)


def _copy_records(src: Path, dst: Path) -> None:
    """Make `dst`'s KEPT files those of run dir `src`, each written atomically; one already
    there with the same text is left as it is, one `src` lacks is removed (a rerun without
    test errors leaves none behind)."""
    for name in KEPT:
        if (src / name).is_file():
            text = (src / name).read_text()
            if not (dst / name).is_file() or (dst / name).read_text() != text:
                write_atomic(dst / name, text)
        else:
            (dst / name).unlink(missing_ok=True)


def keep(runs: str | os.PathLike, archive: str | os.PathLike) -> list[Path]:
    """Copy the KEPT files of every finished run under `runs` to the same place under
    `archive` (a copy kept earlier is replaced); the run dirs kept, relative to `runs`."""
    runs, archive = Path(runs), Path(archive)
    kept = []
    for run_dir in finished_runs(runs):
        where = run_dir.relative_to(runs)
        _copy_records(run_dir, archive / where)
        kept.append(where)
    return kept


def restorable(kept_dir: str | os.PathLike, target: str | os.PathLike,
               config: Mapping[str, Any]) -> bool:
    """Whether `restore` would copy the run kept in `kept_dir` to `target`: it finished with
    `config` (runtime keys aside) and `target` holds no run (no config.json, metrics.json or
    checkpoint)."""
    return finished(Path(kept_dir), config) is not None and not any(
        (Path(target) / name).exists() for name in (records.CONFIG, records.METRICS, CHECKPOINTS))


def restore(archive: str | os.PathLike, runs: str | os.PathLike,
            configs: Mapping[Path, Mapping[str, Any]]) -> list[Path]:
    """Copy each run kept under `archive` at one of the places `configs` names (relative run
    dirs) to the same place under `runs`, when it finished with that config (runtime keys
    aside, `rundir.finished`) and no run is there (no config.json, metrics.json or checkpoint):
    a run is never replaced, nor another config's restored; the run dirs restored."""
    archive, runs = Path(archive), Path(runs)
    restored = []
    for where, config in configs.items():
        if not restorable(archive / where, runs / where, config):
            continue
        _copy_records(archive / where, runs / where)
        restored.append(Path(where))
    return restored
