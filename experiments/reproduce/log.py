"""What reproduce prints and logs: whole lines (lanes print side by side), and one line per
training command it ran in RUNS/reproduce.jsonl."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

LOG = "reproduce.jsonl"
LOG_LOCK = threading.Lock()  # lanes append to the one reproduce.jsonl
SAY_LOCK = threading.Lock()  # lanes print whole lines


def say(text: str) -> None:
    """Print `text` as one write, flushed: lanes' lines never interleave."""
    with SAY_LOCK:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def log_command(runs: Path, record: dict) -> None:
    """Append one command's record (step, command, exit, wall seconds, ...) to RUNS/LOG."""
    with LOG_LOCK, open(runs / LOG, "a") as log:
        log.write(json.dumps(record) + "\n")
