"""Catch a bad config-group choice (`pooling=foo`) before Hydra, with a one-line message."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The options of a config group: its yaml files, nested ones as 'sub/name'."""
    root = conf_dir / group
    files = {str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml")}
    return sorted(files | stored_options(group))


def stored_options(group: str) -> set[str]:
    """The options of a group in Hydra's ConfigStore (a plugin's models: experiments/plugins)."""
    from hydra.core.config_store import ConfigStore

    try:
        names = ConfigStore.instance().list(group)
    except OSError:  # no such group stored
        return set()
    return {n.removesuffix(".yaml") for n in names}


def chosen(value: object) -> list[object]:
    """What a parsed override value chooses: itself, a list's items, a choice sweep's items;
    nothing for null, '', a glob, a range or an interval (Hydra expands or rejects those)."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob, Sweep

    if isinstance(value, ChoiceSweep):
        return list(value.list)
    if isinstance(value, list):
        return value
    return [] if value is None or value == "" or isinstance(value, (Sweep, Glob)) else [value]


def bad_group_choice(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> str | None:
    """The one-line error for the first override choosing a missing group option, else None.
    Overrides are read by Hydra's own parser: `pooling=max,l2`, `choice(max,l2)`,
    `logger=[csv,tensorboard]` and `pooling@conv=max` are all checked option by option; the
    options of a group include those in the dirs a `hydra.searchpath` override adds."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException:
            continue  # composing reports what Hydra cannot parse
        group = override.key_or_group
        if override.is_delete() or group.startswith("hydra") or not (conf_dir / group).is_dir():
            continue
        options = sorted({o for d in (conf_dir, *search_dirs(argv)[1:])
                          for o in group_options(group, d)})
        for choice in chosen(override.value()):
            if str(choice) not in options:
                return f"{group}={str(choice)!r} is not one of {', '.join(options)}"
    return None


def search_dirs(overrides: Sequence[str]) -> tuple[Path, ...]:
    """The project's conf dir, then each `file://` dir an override `hydra.searchpath=[...]`
    names (Hydra's config search path: config files kept outside the project, whose options
    are options of their groups)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    dirs = [CONF_DIR]
    parser = OverridesParser.create()
    for override in overrides:
        if not override.lstrip("+").startswith("hydra.searchpath"):
            continue
        try:
            (parsed,) = parser.parse_overrides([override])
        except HydraException:
            continue  # composing reports it
        value = parsed.value()
        for item in value if isinstance(value, list) else [value]:
            if str(item).startswith("file://"):
                dirs.append(Path(str(item)[len("file://"):]))
    return tuple(dirs)
