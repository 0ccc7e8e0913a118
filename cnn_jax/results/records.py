"""What a run leaves on disk: metrics.json (final), metrics.jsonl (per epoch), config.json.

metrics.json holds: status ("ok" | "diverged" | "failed"), error (one line or None), overrides
(Hydra task overrides), model (name), seeds (list), per_seed (list of dicts: seed, status,
best_val_epoch, val_acc, test_acc, last_test_acc, final_train_loss), test_acc / val_acc /
last_test_acc (means over the seeds that finished ok), best_val_epoch, epochs, params,
flops_per_image, seconds, train_seconds, compile_seconds, images_per_sec, device. Accuracies are
fractions in [0, 1]. Every write is atomic: a temp file in the same folder, then a rename.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS = "metrics.json"
EPOCHS = "metrics.jsonl"
CONFIG = "config.json"
STATUSES = ("ok", "diverged", "failed")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` through a temp file and a rename, so readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Atomically write a JSON object (NaN/inf become null)."""
    return write_text_atomic(path, json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def json_line(record: Mapping[str, Any]) -> str:
    """One record as a JSON line (NaN/inf become null)."""
    return json.dumps(_jsonable(record), sort_keys=True) + "\n"


def append_jsonl(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Append one JSON line (one line per epoch), flushed to disk."""
    with open(path, "a") as f:
        f.write(json_line(record))
        f.flush()
        os.fsync(f.fileno())


def read_metrics(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's metrics.json, or None when it has none (never started or still running)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return None
    return json.loads(path.read_text())


def read_epochs(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's per-epoch records from metrics.jsonl (empty when absent)."""
    path = Path(run_dir) / EPOCHS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_finished_ok(run_dir: str | os.PathLike) -> bool:
    """True when the run's metrics.json says status ok (a sweep relaunch skips it)."""
    metrics = read_metrics(run_dir)
    return bool(metrics) and metrics.get("status") == "ok"


def failure_record(error: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The metrics.json of a run that failed before or while training."""
    return {"status": "failed", "error": error.splitlines()[0] if error else error,
            "overrides": list(overrides or []), "per_seed": []}
