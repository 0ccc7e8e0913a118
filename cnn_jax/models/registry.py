"""The models by name: each a Flax module class built from its own frozen config dataclass.

`convnet` (ConvNet from ModelConfig) is built in; `register_model` adds a researcher's own
classifier, which then runs wherever a ConvNet does (`fit`, the command line with
`plugins=[...] model=NAME`, sweeps, seeds, resume, tables). `mutable` names the variable
collections the module updates while training (e.g. `batch_stats` of BatchNorm): they travel
with the parameters and are replaced by the module's updates after each step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import flax.linen as nn

from cnn_jax.config import ConfigError, ModelConfig
from cnn_jax.models.convnet import ConvNet


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its config dataclass, its module class (`module(cfg)`), and the
    variable collections it updates in training."""

    name: str
    config: type
    module: type[nn.Module]
    mutable: tuple[str, ...] = ()


MODELS: dict[str, ModelEntry] = {"convnet": ModelEntry("convnet", ModelConfig, ConvNet)}


def register_model(name: str, config: type, module: type[nn.Module],
                   mutable: Sequence[str] = ()) -> ModelEntry:
    """Make `module(cfg)` (a Flax module taking NHWC images and `train`, returning logits)
    available as model `name`, configured by the frozen dataclass `config`.

    The config's fields are the YAML / command-line keys under `model.`; fields named
    input_shape / num_classes are set from the data, and fields named like the model-wide
    knobs (activation, pooling, dropout, conv_stride) take the knob's value on the command line.
    """
    if not dataclasses.is_dataclass(config):
        raise ConfigError(f"register_model({name!r}): config={config!r} must be a dataclass")
    for other in MODELS.values():
        if other.config is config and other.name != name:
            raise ConfigError(f"register_model({name!r}): config {config.__name__} is already "
                              f"model {other.name!r}; give each model its own config class")
    entry = ModelEntry(name, config, module, tuple(mutable))
    MODELS[name] = entry
    return entry


def entry_of(cfg: object) -> ModelEntry:
    """The registered model whose config `cfg` is."""
    for entry in MODELS.values():
        if type(cfg) is entry.config:
            return entry
    raise ConfigError(f"model config {type(cfg).__name__} belongs to no registered model; "
                      f"allowed: {', '.join(MODELS)}")


def make_model(cfg: object) -> nn.Module:
    """The Flax module of a model config."""
    return entry_of(cfg).module(cfg)


def mutable_of(model: nn.Module) -> tuple[str, ...]:
    """The variable collections `model` updates while training (none for a ConvNet)."""
    for entry in MODELS.values():
        if isinstance(model, entry.module):
            return entry.mutable
    return ()
