"""The command line's defaults, built from `cnn_jax.config`'s dataclasses: the one source of
every default value, so `python -m experiments.train` with no arguments trains `Config()`.

Two ConfigStore nodes, stored when this module is imported: Hydra imports every module under
`hydra_plugins` before it composes, so any composition of conf/ finds them (the CLI, `compose`,
a notebook's own `hydra.compose`); the CLI and `compose` also import it themselves:
`schema/run` (package _global_, first in conf/config.yaml's defaults list): seed, plugins,
train, optimizer, data, pooling and the model-wide knobs `conv_stride` / `dropout`, each at its
dataclass default; `schema/convnet`: ModelConfig's defaults with the knobs interpolated, which
each ConvNet file under conf/model/ extends (`- /schema/convnet@_here_`). A group option states
only what differs, and every key exists for a `key=value` override.

Where the command line differs from the library: `data.dir` is the folder the library would read
(`cnn_jax.data.registry.idx_dir`, through the `cnn_jax.idx_dir` resolver, so the run's
config.json names it) and `train.compile_cache` is on (conf/config.yaml; the library sets no
global state).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import OmegaConf

IDX_DIR_RESOLVER = "cnn_jax.idx_dir"

# ModelConfig's fields set by the model-wide knobs of conf/config.yaml (each at its default
# here): in every conv block, in every dense layer, and on the model itself.
BLOCK_KNOBS = {"stride": "${conv_stride}", "pool": "${pooling}"}
DENSE_KNOBS = {"dropout": "${dropout}"}
MODEL_KNOBS = {"activation": "${activation.name}", "out_dropout": "${dropout}"}


def plain(value: Any) -> Any:
    """A dataclass or tuple default as Hydra takes it (dicts and lists)."""
    if dataclasses.is_dataclass(value):
        return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def field_defaults(cls: type) -> dict[str, Any]:
    """`cls`'s fields at their defaults, plain, read without building `cls` (its checks import
    the component registries, JAX among them; the command line answers a mistake without it)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = plain(f.default)
        elif dataclasses.is_dataclass(f.default_factory):
            out[f.name] = field_defaults(f.default_factory)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = plain(f.default_factory())
    return out


def _knob(cls: type, name: str) -> Any:
    return field_defaults(cls)[name]


# Set from the data by `Config` (its dataset's entry), so not keys of the command line.
FROM_DATA = ("input_shape", "num_classes")


def convnet_node() -> dict[str, Any]:
    """ModelConfig's defaults with the knobs in place of the values they set."""
    from cnn_jax.config import ModelConfig

    node = {k: v for k, v in field_defaults(ModelConfig).items() if k not in FROM_DATA}
    node["conv"] = [{**block, **BLOCK_KNOBS} for block in node["conv"]]
    node["dense"] = [{**layer, **DENSE_KNOBS} for layer in node["dense"]]
    return {**node, **MODEL_KNOBS}


def run_node() -> dict[str, Any]:
    """Every key of a run other than the model, at its dataclass default; `data.dir` the
    folder of the dataset data.name names."""
    from cnn_jax.config import Config, ConvBlockConfig, DenseConfig, PoolConfig

    run = field_defaults(Config)
    del run["model"]
    run["data"]["dir"] = f"${{{IDX_DIR_RESOLVER}:${{data.name}}}}"
    return {**run, "conv_stride": _knob(ConvBlockConfig, "stride"),
            "dropout": _knob(DenseConfig, "dropout"), "pooling": field_defaults(PoolConfig)}


def idx_dir(name: str) -> str | None:
    """The IDX folder of the registered dataset `name` ($its variable, else its default
    folder); None for a name not registered (a TFDS dataset)."""
    from cnn_jax.data.registry import DATASETS
    from cnn_jax.data.registry import idx_dir as entry_dir

    entry = DATASETS.get(name)
    return entry_dir(entry, None) if entry else None


def register() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="schema", name="run", node=run_node(), package="_global_")
    store.store(group="schema", name="convnet", node=convnet_node())
    OmegaConf.register_new_resolver(IDX_DIR_RESOLVER, idx_dir, replace=True)


register()
