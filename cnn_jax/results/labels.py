"""Readable cell names for a sweep's tables and figure, from its experiment file's `labels:`.

An experiment file may name the values of the keys it sweeps (a top-level `labels:` that the
training config ignores):

    labels:
      model: {fc30: 784-30, nielsen_fc: 784-100}
      data.expand: {"False": 50k images, "True": expanded}

A cell's label is the names of its values of the swept keys, joined by ", " in the sweep's key
order; a value without a name reads `key=value`, as a sweep without labels does throughout.
Values match as text, case aside (`false:` in YAML names the override `data.expand=False`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
Labels = Mapping[str, Mapping[str, str]]


def _text(value: Any) -> str:
    return str(value).strip().lower()


def read_labels(experiment: str | None, conf_dir: str | os.PathLike = CONF_DIR) -> Labels:
    """The `labels:` of conf/experiment/<experiment>.yaml as {key: {value text: name}}; empty
    when there is no experiment, no such file or no labels. ValueError for labels that are not
    a mapping of keys to mappings of values to names."""
    import yaml  # a Hydra dependency: the tables' extra, not the core install

    if not experiment:
        return {}
    path = Path(conf_dir) / "experiment" / f"{experiment}.yaml"
    if not path.is_file():
        return {}
    node = yaml.safe_load(path.read_text()) or {}
    labels: dict[str, dict[str, str]] = {}
    for entry in node.get("defaults") or []:  # another experiment file it builds on: its labels
        if isinstance(entry, str) and entry.startswith("/experiment/"):
            for key, names in read_labels(entry.removeprefix("/experiment/"), conf_dir).items():
                labels.setdefault(key, {}).update(names)
    found = node.get("labels") or {}
    if not isinstance(found, Mapping) or not all(isinstance(v, Mapping) for v in found.values()):
        raise ValueError(f"{path}: labels must map each swept key to {{value: name}}, "
                         f"got {found!r}")
    for key, names in found.items():
        labels.setdefault(str(key), {}).update({_text(v): str(name) for v, name in names.items()})
    return labels


def _unset(value: Any) -> bool:
    """None or NaN: a key the cell's overrides do not set."""
    return value is None or (isinstance(value, float) and math.isnan(value))


SIGNIFICANT = 4  # digits a label shows of a number (the CSV keeps the full value)


def short_number(value: Any) -> str:
    """A number as a label shows it: at most SIGNIFICANT significant digits
    ('0.007247031607588867' -> '0.007247'); anything else as it is."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number) or text.lstrip("+-").isdigit():
        return text
    return f"{number:.{SIGNIFICANT}g}"


def value_label(key: str, value: Any, labels: Labels, keyed: bool = True) -> str:
    """The name of one key's value, or without one `key=value` (`value` when not keyed: a
    grid's row or column of that key), numbers to SIGNIFICANT digits."""
    shown = short_number(value)
    return labels.get(key, {}).get(_text(value), f"{key}={shown}" if keyed else shown)


def cell_label(values: Mapping[str, Any], keys: Sequence[str], labels: Labels) -> str:
    """A cell's name: its values of `keys` (the swept ones) by `value_label`, joined by ', '
    (the missing ones left out; 'default' when none is left)."""
    parts = [value_label(k, values[k], labels) for k in keys if not _unset(values.get(k))]
    return ", ".join(parts) or "default"
