"""Plugins named on the command line, imported before Hydra composes, so that what they register
is an option of its group in the same form as a built-in: a model (`plugins=[my_lab.models]
model=my_net`), a pool (`pooling=min`), an activation (`activation=softsign`), an optimizer.

A registered model without a `conf/model/<name>.yaml` gets a node in Hydra's ConfigStore: its
config dataclass's defaults, `arch: <name>`, and the model-wide knobs interpolated into the
fields named like them (activation: ${activation.name}, pooling: ${pooling}, dropout:
${dropout}, conv_stride: ${conv_stride}).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from experiments.overrides import CONF_DIR

KNOBS = {"activation": "${activation.name}", "pooling": "${pooling}", "dropout": "${dropout}",
         "conv_stride": "${conv_stride}"}


def plugins_in(argv: Sequence[str]) -> list[str]:
    """The modules a `plugins=[...]` (or `+plugins=...`) override names, read by Hydra's parser."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    modules: list[str] = []
    for arg in argv:
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException:
            continue
        if override.key_or_group != "plugins" or override.is_delete():
            continue
        value = override.value()
        modules += [str(v) for v in (value if isinstance(value, list) else [value]) if v]
    return modules


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return list(value) if isinstance(value, tuple) else value


def model_node(name: str, config: type) -> dict[str, Any]:
    """The `model` group node of a registered model: defaults, knobs, arch."""
    node: dict[str, Any] = {"arch": name}
    for f in dataclasses.fields(config):
        if f.name in KNOBS:
            node[f.name] = KNOBS[f.name]
        elif f.default is not dataclasses.MISSING:
            node[f.name] = _plain(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            node[f.name] = _plain(f.default_factory())
        else:
            node[f.name] = "???"  # Hydra's mandatory value: set it on the command line
    return node


def store_models() -> None:
    """A ConfigStore `model/<name>` node for each registered model without a YAML file."""
    from hydra.core.config_store import ConfigStore

    from cnn_jax.models.registry import MODELS

    store = ConfigStore.instance()
    for name, entry in MODELS.items():
        if name != "convnet" and not (CONF_DIR / "model" / f"{name}.yaml").exists():
            store.store(group="model", name=name, node=model_node(name, entry.config))


# group -> (registry module, registry name, the group node for a registered name; the other
# keys are their dataclass's defaults, from hydra_plugins/cnn_jax_schema's schema/run node)
COMPONENT_GROUPS: dict[str, tuple[str, str, Any]] = {
    "pooling": ("cnn_jax.ops.pooling", "POOLS", lambda name: {"kind": name}),
    "activation": ("cnn_jax.ops.activations", "ACTIVATIONS", lambda name: {"name": name}),
    "optimizer": ("cnn_jax.train.optim", "OPTIMIZERS", lambda name: {"name": name}),
}


def store_components() -> None:
    """A ConfigStore `<group>/<name>` node for each registered pool, activation and optimizer
    without a YAML file."""
    import importlib

    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, (module, registry, node) in COMPONENT_GROUPS.items():
        for name in getattr(importlib.import_module(module), registry):
            if not (CONF_DIR / group / f"{name}.yaml").exists():
                store.store(group=group, name=name, node=node(name))


def load_cli_plugins(argv: Sequence[str] = tuple(sys.argv[1:])) -> None:
    """Import the plugins the command line names and store their models' nodes; a plugin that
    cannot be imported is a one-line error (exit 2)."""
    from cnn_jax.config import ConfigError, load_plugins

    modules = plugins_in(argv)
    try:
        load_plugins(modules)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if modules:  # the built-in models and components all have YAML files; only a plugin adds any
        store_models()
        store_components()
