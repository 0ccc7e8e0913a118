"""The published results: the experiment files that say so in a `# reproduce:` line.

An experiment file (`conf/experiment/**.yaml`, or one on `hydra.searchpath`) is a step of a
published result when one of its comment lines reads

    # reproduce: RESULT [OVERRIDE ...] [--same-as EXPERIMENT] [--order N]

RESULT names the result, its tables' dir under the results dir (`docs/results/RESULT`; `nielsen`
is Nielsen's table, `nielsen_ch6.md`); the step runs `experiment=<this file>` with the
OVERRIDEs (a sweep when they or the file sweep); `--same-as` makes this file's target run
another file's step instead (Nielsen's row 9 is the vote of row 8's jobs); `--order` places the
result in `all` and in the lists (lowest first; a result without one comes after, by name).
Adding such a file makes its result and the file's own name targets of
`python -m experiments.reproduce`, with no code edit.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from experiments.overrides import CONF_DIR

MARKER = re.compile(r"^#\s*reproduce:(.*)$", re.M)
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


@dataclass(frozen=True)
class Published:
    """One marked experiment file: its experiment name, result, overrides, the experiment
    whose step its target runs (`same_as`, else itself) and the result's place (`order`)."""

    experiment: str
    result: str
    overrides: tuple[str, ...] = ()
    same_as: str | None = None
    order: int | None = None


def read_marker(experiment: str, text: str, where: str) -> Published | None:
    """The `# reproduce:` line of an experiment file's text (None: it has none); ValueError (one
    line naming the file) for a line that does not read as RESULT [OVERRIDE ...] [--same-as X]
    [--order N]."""
    found = MARKER.findall(text)
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"{where}: {len(found)} `# reproduce:` lines; one is allowed")
    usage = "RESULT [OVERRIDE ...] [--same-as EXPERIMENT] [--order N]"
    try:
        words = shlex.split(found[0])
    except ValueError as exc:
        raise ValueError(f"{where}: `# reproduce:{found[0]}`: {exc}") from None
    if not words or not NAME.match(words[0]) or words[0] == "all":
        raise ValueError(f"{where}: `# reproduce:{found[0]}` must read {usage} (RESULT a name, "
                         "not 'all')")
    result, rest, options, overrides = words[0], words[1:], {}, []
    while rest:
        word = rest.pop(0)
        if word in ("--same-as", "--order"):
            if not rest:
                raise ValueError(f"{where}: `# reproduce:{found[0]}`: {word} needs a value")
            options[word] = rest.pop(0)
        elif word.startswith("-") or "=" not in word:
            raise ValueError(f"{where}: `# reproduce:{found[0]}`: {word!r} is neither an "
                             f"override (key=value) nor --same-as / --order; it reads {usage}")
        else:
            overrides.append(word)
    order = options.get("--order")
    if order is not None and not re.fullmatch(r"-?\d+", order):
        raise ValueError(f"{where}: `# reproduce:{found[0]}`: --order {order!r} is not a whole "
                         "number")
    return Published(experiment, result, tuple(overrides), options.get("--same-as"),
                     None if order is None else int(order))


@functools.cache
def published(conf_dirs: tuple[Path, ...] = (CONF_DIR,)) -> tuple[Published, ...]:
    """Every marked experiment file under the conf dirs' `experiment/` (a name found in an
    earlier dir hides a later one's, as on Hydra's search path), by experiment name."""
    found: dict[str, Published] = {}
    for conf in conf_dirs:
        root = conf / "experiment"
        for path in sorted(root.rglob("*.yaml")) if root.is_dir() else ():
            name = path.relative_to(root).with_suffix("").as_posix()
            if name in found:
                continue
            marked = read_marker(name, path.read_text(), str(path))
            if marked is not None:
                found[name] = marked
    return tuple(sorted(found.values(), key=lambda p: natural(p.experiment)))


def natural(name: str) -> tuple:
    """A sort key that puts row2 before row10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def result_order(marked: tuple[Published, ...]) -> list[str]:
    """The results' names: those with an --order by it (lowest first), then the others by
    name."""
    orders: dict[str, int | None] = {}
    for p in marked:
        known = orders.get(p.result)
        orders[p.result] = p.order if known is None else (
            known if p.order is None else min(known, p.order))
    return sorted(orders, key=lambda r: (orders[r] is None, orders[r] or 0, natural(r)))

