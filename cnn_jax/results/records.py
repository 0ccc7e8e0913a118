"""What a run leaves on disk: metrics.json (final), metrics.jsonl (per epoch), config.json.

metrics.json holds: status ("ok" | "diverged" | "failed" | "pruned": stopped by a search's
pruner, with `epochs` run and no per_seed), error (one line or None), overrides
(Hydra task overrides), model (name), seeds (list), per_seed (list of dicts: seed, status,
best_val_epoch, val_acc, test_acc, last_test_acc, final_train_loss), test_acc / val_acc /
last_test_acc (means over the seeds that finished ok), best_val_epoch, epochs, params,
flops_per_image, seconds (this process's wall time plus the seconds of the epochs a resumed
run restored from its checkpoint), train_seconds, compile_seconds, images_per_sec (these three of
this process), device, resumed_from (the epoch whose checkpoint a resumed run continued from,
counted from 1 as the history counts epochs: the run resumed at the next one; else None),
provenance (`provenance.provenance`), vote_test_acc (with train.vote).
test_errors.json (with train.test_errors) holds images (the test set's size), seeds, and errors:
per seed, the [index, label, predicted] of each test image its best-validation net gets wrong.
Accuracies are fractions in [0, 1]. Every whole-file write is atomic
(`cnn_jax.atomic.write_atomic`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnn_jax.atomic import write_atomic
from cnn_jax.errors import first_line

METRICS = "metrics.json"
EPOCHS = "metrics.jsonl"
CONFIG = "config.json"
TEST_ERRORS = "test_errors.json"
FINISHED = ("ok", "diverged")  # the statuses of a run that trained to its end
# config keys that change how a run goes, not what it computes: no part of a run's identity
RUNTIME_KEYS = ("train.progress", "train.compile_cache", "train.resume", "train.concurrent_seeds")
STATUSES = ("ok", "diverged", "failed", "pruned")


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


def write_json_atomic(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Atomically write a JSON object (NaN/inf become null)."""
    return write_atomic(path, json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


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
    """The run's per-epoch records from metrics.jsonl (empty when absent); a last line cut short
    (a run killed while appending it) is left out, a bad line before it is a ValueError."""
    path = Path(run_dir) / EPOCHS
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines[:-1]]
    with contextlib.suppress(ValueError):
        records += [json.loads(line) for line in lines[-1:]]
    return records


def write_test_errors(run_dir: str | os.PathLike, seeds: list[int], images: int,
                      errors: list[list[list[int]]]) -> Path:
    """test_errors.json: one line per seed's errors, so the file reads (and diffs) by seed."""
    nets = ",\n".join(json.dumps(net) for net in errors)
    return write_atomic(Path(run_dir) / TEST_ERRORS,
                        f'{{"images": {images}, "seeds": {json.dumps(seeds)}, "errors": [\n'
                        f"{nets}\n]}}\n")


def read_test_errors(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's test_errors.json, or None when it has none."""
    path = Path(run_dir) / TEST_ERRORS
    return json.loads(path.read_text()) if path.exists() else None


def failure_record(error: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The metrics.json of a run that failed before or while training."""
    return {"status": "failed", "error": first_line(error) if error else error,
            "overrides": list(overrides or []), "per_seed": []}
