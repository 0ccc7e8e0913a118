"""Catch a bad config-group choice (`pooling=foo`) before Hydra, with a one-line message."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The options of a config group: its yaml files, nested ones as 'sub/name'."""
    root = conf_dir / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def bad_group_choice(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> str | None:
    """The one-line error for the first override choosing a missing group option, else None."""
    for arg in argv:
        if "=" not in arg or arg.startswith(("+", "~", "hydra")):
            continue
        key, value = arg.split("=", 1)
        if not (conf_dir / key).is_dir() or "(" in value or value in ("null", "", "[]"):
            continue
        options = group_options(key, conf_dir)
        for choice in value.strip("[]").split(","):  # a sweep a,b or a list [a,b]
            if choice.strip() not in options:
                return f"{key}={choice.strip()!r} is not one of {', '.join(options)}"
    return None


def exit_on_bad_group_choice(argv: Sequence[str] = tuple(sys.argv[1:])) -> None:
    """Print the error for a missing group option and exit with status 2."""
    error = bad_group_choice(argv)
    if error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
