"""A command line checked before Hydra runs and before JAX loads: each mistake is one line.

`check(argv)` returns the error line for the first mistake, else None:
- a group option that does not exist (`pooling=foo`), listing the options;
- a key the config does not have (`train.batchsize=32`), with the closest known keys;
- an experiment that defines a sweep (`hydra.sweeper.params`), launched without `-m`;
- a value the config's reader refuses (`train.epochs=0`), for the run or for each job a
  multirun would launch.
The command's `plugins=[...]` are imported first (`experiments.plugins`), so what they register
is an option of its group (`model=my_net`, `activation=softsign`, `pooling=min`). Hydra's own
flags (`--help`, `--cfg`, ...) are left to
Hydra.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.overrides import CONF_DIR, bad_group_choice, group_options
from experiments.plugins import load_cli_plugins

MULTIRUN_FLAGS = ("-m", "--multirun")
# flags after which Hydra answers by itself, or reads a config other than conf/config.yaml
HYDRA_ONLY_FLAGS = ("--hydra-help", "-c", "--cfg", "-i", "--info", "-p",
                    "--package", "--resolve", "-sc", "--shell-completion", "-cp",
                    "--config-path", "-cn", "--config-name", "-cd", "--config-dir",
                    "--experimental-rerun")

def overrides_of(argv: Sequence[str]) -> list[str]:
    """The overrides of a command line (what is not a flag)."""
    return [a for a in argv if not a.startswith("-")]


def _parse(override: str) -> Any | None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        (parsed,) = OverridesParser.create().parse_overrides([override])
    except HydraException:
        return None
    return parsed


def _flat_keys(node: Any, prefix: str = "") -> set[str]:
    """Every key path of a nested mapping / list ('model.conv.0.pool.kind'), inner ones too."""
    keys: set[str] = set()
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for key, value in items:
        path = f"{prefix}{key}"
        keys.add(path)
        keys |= _flat_keys(value, f"{path}.")
    return keys


def schema_keys(cls: type | None = None, prefix: str = "") -> set[str]:
    """The key paths of the config schema (the dataclasses' fields, read without building one,
    so without JAX); a list of layers is its own key."""
    import dataclasses
    import typing

    from cnn_jax.config import Config

    cls = cls or Config
    hints = typing.get_type_hints(cls)
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        keys.add(path)
        if dataclasses.is_dataclass(hints[f.name]):
            keys |= schema_keys(hints[f.name], f"{path}.")
    return keys


def unknown_key(overrides: Sequence[str], composed: dict[str, Any]) -> str | None:
    """The error for the first `key=value` whose key is neither in the composed config nor in
    the schema, naming the closest known keys; None when every key is known."""
    known = _flat_keys(composed) | schema_keys()
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    for arg in overrides:
        parsed = _parse(arg)
        if parsed is None or parsed.is_delete() or parsed.is_add() or parsed.is_force_add():
            continue
        key = parsed.key_or_group
        if key in known or key in groups or key.startswith("hydra") or "@" in key:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return f"{key} is not a known config key{hint}"
    return None


def _compose(overrides: Sequence[str], with_hydra: bool = False) -> Any:
    from experiments.compose import compose_dictconfig

    return compose_dictconfig(*overrides, with_hydra=with_hydra)


def _first_choices(overrides: Sequence[str]) -> list[str]:
    """The overrides with each sweep replaced by its first value (what a job composes)."""
    out = []
    for arg in overrides:
        parsed = _parse(arg)
        if parsed is None or not parsed.is_sweep_override():
            out.append(arg)
            continue
        first = next(iter(parsed.sweep_string_iterator()), None)
        if first is not None:
            out.append(f"{parsed.get_key_element()}={first}")
    return out


def _fixed_keys(argv: Sequence[str]) -> set[str]:
    """The config keys the command line sets to one value (`pooling=avg`, not `pooling=avg,max`)."""
    fixed = set()
    for arg in argv:
        parsed = _parse(arg)
        if parsed is not None and not parsed.is_sweep_override() and not parsed.is_delete():
            fixed.add(parsed.get_key_element().lstrip("+~"))
    return fixed


def _sweep_error(hydra: Any, multirun: bool, argv: Sequence[str]) -> str | None:
    """The error for a preset whose sweeper params define a sweep, run without -m.

    A command that sets every swept key to one value names one job of the sweep (what
    `reproduce` runs for each cell), so it is a plain run, not a mistake.
    """
    params = dict(hydra.sweeper.get("params") or {})
    fixed = _fixed_keys(argv)
    if multirun or all(key in fixed for key in params):
        return None
    params = {key: value for key, value in params.items() if key not in fixed}
    choices = hydra.runtime.choices
    preset = next((f"{g}={choices.get(g)}" for g in ("hparams_search", "experiment")
                   if choices.get(g) not in (None, "null")), "the config")
    return (f"{preset} defines a sweep over {', '.join(params)}; run it with -m "
            f"(python -m experiments.train -m {' '.join(argv)})")


def _validation_error(dcfg: Any, label: str = "") -> str | None:
    from cnn_jax.config import ConfigError, from_dictconfig
    from cnn_jax.errors import first_line

    try:
        from_dictconfig(dcfg)
    except ConfigError as err:
        return f"{label}{first_line(err)}"
    return None


def _job_errors(overrides: Sequence[str]) -> str | None:
    """The first job of a multirun whose config is refused (basic sweeper only)."""
    from experiments.compose import sweep_jobs

    try:
        jobs = sweep_jobs(*overrides, numbered=False)
    except ValueError:  # another sweeper: its trials are checked as they run
        return None
    seen: set[tuple[str, ...]] = set()
    for number, job in enumerate(jobs):
        if tuple(job) in seen:
            continue
        seen.add(tuple(job))
        error = _validation_error(_compose(job), f"job {number} ({' '.join(job)}): ")
        if error:
            return error
    return None


def check(argv: Sequence[str]) -> str | None:
    """The one-line error of the first mistake in the command line, else None; config keys
    named as the command line sets them."""
    from cnn_jax.errors import command_line

    with command_line():
        return _check(argv)


def _check(argv: Sequence[str]) -> str | None:
    from hydra.errors import HydraException

    from cnn_jax.config import ConfigError
    from cnn_jax.errors import first_line

    if any(a.split("=")[0] in HYDRA_ONLY_FLAGS for a in argv):
        return None
    overrides = overrides_of(argv)
    multirun = any(a in MULTIRUN_FLAGS for a in argv)
    try:
        load_cli_plugins(overrides)
        error = bad_group_choice(overrides)
        if error:
            return error
        is_hydra = lambda o: o.lstrip("+~").startswith("hydra")
        base = [(o, _parse(o)) for o in _first_choices(overrides) if not is_hydra(o)]
        groups_only = [o for o, p in base if p is not None and not p.is_delete()
                       and (CONF_DIR / p.key_or_group).is_dir()]
        from omegaconf import OmegaConf

        composed = OmegaConf.to_container(_compose(groups_only), resolve=False)
        error = unknown_key(overrides, composed)
        if error:
            return error
        base = [o for o, _ in base]
        hydra = [o for o in overrides
                 if is_hydra(o) and not ((p := _parse(o)) and p.is_sweep_override())]
        full = _compose([*base, *hydra], with_hydra=True)
        error = _sweep_error(full.hydra, multirun, argv)
        if error:
            return error
        if multirun:
            return _job_errors(overrides)
        return _validation_error(_compose(base))
    except ConfigError as err:  # a plugin that cannot be imported, say
        return first_line(err)
    except HydraException:  # what Hydra itself reports better (a parse error, say)
        return None


HELP = """\
python -m experiments.train [-m] [group=option ...] [key=value ...]: train, write its records.

Config groups (group=option; several with -m: pooling=max,l2):
{groups}

Keys: key=value sets any config key (train.epochs=8, optimizer.lr=0.01, model.conv.0.stride=2);
`--cfg job` prints the composed config, `--hydra-help` Hydra's own flags.
Run dir: outputs/<experiment or model>/<config id> (the same command continues the same run;
train.resume=false starts a new one); -m: multirun/<experiment or sweep>/<id>/<job>.
Ctrl-C stops after the current chunk; run the same command to continue. Docs: README.md."""


def help_text(conf_dir: Path = CONF_DIR) -> str:
    """The command's --help: its groups and their options, read from conf/ alone (Hydra's own
    help lists the same after seconds of composing)."""
    groups = sorted(p.name for p in conf_dir.iterdir() if p.is_dir())
    width = max(map(len, groups))
    lines = [f"  {g:<{width}}  {', '.join(group_options(g, conf_dir))}" for g in groups]
    return HELP.format(groups="\n".join(lines))


def exit_on_mistake(argv: Sequence[str]) -> None:
    """Print the error line of the first mistake and exit with status 2."""
    if any(a in ("-h", "--help") for a in argv):
        print(help_text())
        raise SystemExit(0)
    error = check(argv)
    if error:
        import sys

        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
