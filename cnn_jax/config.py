"""Frozen, validated run configuration.

`from_dictconfig` is the only reader of Hydra's DictConfig.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnn_jax.ops.activations import ACTIVATIONS
from cnn_jax.ops.conv import IMPLS as CONV_IMPLS
from cnn_jax.ops.pooling import POOLS

PADDINGS = ("VALID", "SAME")
ORDERS = ("pool_act", "act_pool")
DROPOUT_FORMS = ("inverted", "nielsen")
INITS = ("nielsen", "lecun", "he")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
DATASETS = ("mnist", "fashion_mnist")
PROTOCOLS = ("nielsen", "full")
SOURCES = ("auto", "idx", "tfds")


class ConfigError(ValueError):
    """A configuration value is out of range; the message is one line naming it."""


def _one_of(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")


def _live_names(module: str, registry: str, builtin: tuple[str, ...]) -> tuple[str, ...]:
    """The names in `module.registry` if that module is loaded, else the built-in names.

    Registering a component needs its module, so anything registered is seen; config itself
    never imports the higher layers that own these registries (models, train).
    """
    return tuple(getattr(sys.modules.get(module), registry, builtin))


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1")


def _rate(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{name}={value!r} must be a number in [0, 1)")


@dataclass(frozen=True)
class PoolConfig:
    """Pooling after a convolution: kind, square window, stride (None = window), p for lp."""

    kind: str = "max"
    window: int = 2
    stride: int | None = None
    p: float = 2.0

    def __post_init__(self) -> None:
        _one_of("pooling.kind", self.kind, tuple(POOLS))
        _positive_int("pooling.window", self.window)
        if self.stride is not None:
            _positive_int("pooling.stride", self.stride)
        if not isinstance(self.p, int | float) or self.p < 1.0:
            raise ConfigError(f"pooling.p={self.p!r} must be a number >= 1")

    @property
    def effective_stride(self) -> int:
        return self.window if self.stride is None else self.stride


@dataclass(frozen=True)
class ConvBlockConfig:
    """One convolutional layer: features, square kernel, conv stride, padding, pooling, order."""

    features: int
    kernel: int = 5
    stride: int = 1
    padding: str = "VALID"
    pool: PoolConfig = field(default_factory=PoolConfig)
    order: str = "pool_act"

    def __post_init__(self) -> None:
        _positive_int("conv.features", self.features)
        _positive_int("conv.kernel", self.kernel)
        _positive_int("conv.stride", self.stride)
        _one_of("conv.padding", self.padding, PADDINGS)
        _one_of("conv.order", self.order, ORDERS)


@dataclass(frozen=True)
class DenseConfig:
    """One fully connected hidden layer; `dropout` is applied to its input."""

    units: int
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("dense.units", self.units)
        _rate("dense.dropout", self.dropout)


@dataclass(frozen=True)
class ModelConfig:
    """A ConvNet: conv blocks, then FC layers, then a softmax layer (no conv blocks = FC net).

    conv_impl: how conv2d computes ("auto": im2col patches on CPU, XLA's convolution elsewhere).
    """

    conv: tuple[ConvBlockConfig, ...] = ()
    dense: tuple[DenseConfig, ...] = (DenseConfig(100),)
    out_dropout: float = 0.0
    activation: str = "sigmoid"
    init: str = "nielsen"
    dropout_form: str = "inverted"
    num_classes: int = 10
    input_shape: tuple[int, int, int] = (28, 28, 1)
    name: str = "convnet"
    conv_impl: str = "auto"

    def __post_init__(self) -> None:
        _rate("model.out_dropout", self.out_dropout)
        _one_of("model.conv_impl", self.conv_impl, CONV_IMPLS)
        _one_of("activation.name", self.activation, tuple(ACTIVATIONS))
        _one_of("model.init", self.init, _live_names("cnn_jax.models.init", "INIT_SCHEMES", INITS))
        _one_of("model.dropout_form", self.dropout_form, DROPOUT_FORMS)
        _positive_int("model.num_classes", self.num_classes)
        _check_spatial_fit(self)


def conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of a convolution or pooling along one axis."""
    if padding == "SAME":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def _check_spatial_fit(model: ModelConfig) -> None:
    h, w, _ = model.input_shape
    for i, block in enumerate(model.conv):
        if block.padding == "VALID" and block.kernel > min(h, w):
            raise ConfigError(
                f"model.conv.{i}.kernel={block.kernel} is larger than its {h}x{w} input; "
                f"allowed: <= {min(h, w)}"
            )
        h = conv_output_size(h, block.kernel, block.stride, block.padding)
        w = conv_output_size(w, block.kernel, block.stride, block.padding)
        if block.pool.kind != "none":
            if block.pool.window > min(h, w):
                raise ConfigError(
                    f"model.conv.{i}.pool.window={block.pool.window} is larger than its "
                    f"{h}x{w} input; allowed: <= {min(h, w)}"
                )
            stride = block.pool.effective_stride
            h = conv_output_size(h, block.pool.window, stride, "VALID")
            w = conv_output_size(w, block.pool.window, stride, "VALID")


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and its L2 term; `l2` is Nielsen's lambda (divided by the minibatch count)."""

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    l2: float = 0.0
    schedule: str = "constant"
    warmup_fraction: float = 0.2
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        _one_of("optimizer.name", self.name,
                _live_names("cnn_jax.train.optim", "OPTIMIZERS", OPTIMIZERS))
        if not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ConfigError(f"optimizer.lr={self.lr!r} must be a number > 0")
        if not isinstance(self.l2, int | float) or self.l2 < 0:
            raise ConfigError(f"optimizer.l2={self.l2!r} must be a number >= 0")
        _rate("optimizer.momentum", self.momentum)
        _one_of("optimizer.schedule", self.schedule, SCHEDULES)
        _rate("optimizer.warmup_fraction", self.warmup_fraction)
        _rate("optimizer.label_smoothing", self.label_smoothing)


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, where its files are, which split protocol, whether to expand it."""

    name: str = "mnist"
    dir: str = "../shared/data/mnist"
    source: str = "auto"
    protocol: str = "nielsen"
    expand: bool = False
    train_limit: int | None = None
    data_dir: str | None = None
    manual_dir: str | None = None

    def __post_init__(self) -> None:
        _one_of("data.name", self.name, DATASETS)
        _one_of("data.source", self.source, SOURCES)
        _one_of("data.protocol", self.protocol, PROTOCOLS)
        if self.train_limit is not None:
            _positive_int("data.train_limit", self.train_limit)


SEED_BATCHING = ("auto", "vmap", "loop")


@dataclass(frozen=True)
class TrainConfig:
    """Epochs, minibatch size, seeds trained together, shuffling, evaluation batch size.

    vote: also report the plurality vote of the seeds' best-validation nets on the test set.
    devices: data parallel over this many JAX devices (each minibatch sharded along its batch
    axis, parameters replicated); 1 = a single device.
    seed_batching: how the seeds are trained: "vmap" (one batched program), "loop" (one
    compiled one-seed program, called for each seed in turn), "auto" (loop on CPU, else vmap).
    compile_cache: directory where the CLI keeps compiled programs between runs (None: off).
    """

    epochs: int = 1
    batch_size: int = 10
    seeds: int = 1
    shuffle: bool = True
    eval_batch_size: int = 1000
    resume: bool = False
    checkpoint: bool = True
    progress: bool = True
    vote: bool = False
    devices: int = 1
    seed_batching: str = "auto"
    compile_cache: str | None = None

    def __post_init__(self) -> None:
        _positive_int("train.epochs", self.epochs)
        _positive_int("train.batch_size", self.batch_size)
        _positive_int("train.seeds", self.seeds)
        _positive_int("train.eval_batch_size", self.eval_batch_size)
        _positive_int("train.devices", self.devices)
        _one_of("train.seed_batching", self.seed_batching, SEED_BATCHING)
        if self.compile_cache is not None and (not isinstance(self.compile_cache, str)
                                               or not self.compile_cache.strip()):
            raise ConfigError(f"train.compile_cache={self.compile_cache!r} must be a directory "
                              "path or null")
        if self.batch_size % self.devices:
            raise ConfigError(f"train.batch_size={self.batch_size} must be a multiple of "
                              f"train.devices={self.devices}")


@dataclass(frozen=True)
class Config:
    """Everything one run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    plugins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be an integer >= 0")


def _pool_from(node: Mapping[str, Any] | None, default: Mapping[str, Any]) -> PoolConfig:
    merged = {**default, **{k: v for k, v in (node or {}).items() if v is not None}}
    return _build(PoolConfig, merged, "pooling")


def _build(cls: type, values: Mapping[str, Any], where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        allowed = ", ".join(sorted(names))
        raise ConfigError(f"{where}.{unknown[0]} is not a known key; allowed: {allowed}")
    return cls(**values)


@contextlib.contextmanager
def _prefixed(old: str, new: str):
    """Re-raise a ConfigError with `old` replaced by the layer's full path `new`."""
    try:
        yield
    except ConfigError as err:
        raise ConfigError(str(err).replace(old, new, 1)) from None


def model_from_mapping(
    model: Mapping[str, Any], pooling: Mapping[str, Any], activation: str
) -> ModelConfig:
    """Resolve model-level defaults (conv_stride, padding, order, dropout, pooling) into blocks."""
    pooling = {k: v for k, v in pooling.items() if k in {"kind", "window", "stride", "p"}}
    blocks = []
    for i, node in enumerate(model.get("conv") or ()):
        node = {k: v for k, v in dict(node).items() if v is not None}
        unknown = set(node) - {"features", "kernel", "stride", "padding", "order", "pool"}
        if unknown:
            raise ConfigError(f"model.conv.{i}.{sorted(unknown)[0]} is not a known key; "
                              "allowed: features, kernel, stride, padding, order, pool")
        if "features" not in node:
            raise ConfigError(f"model.conv.{i}.features is missing; give an integer >= 1")
        with _prefixed("conv.", f"model.conv.{i}."):
            blocks.append(ConvBlockConfig(
                features=node["features"],
                kernel=node.get("kernel", 5),
                stride=node.get("stride", model.get("conv_stride", 1)),
                padding=node.get("padding", model.get("padding", "VALID")),
                order=node.get("order", model.get("order", "pool_act")),
                pool=_pool_from(node.get("pool"), pooling),
            ))
    default_dropout = model.get("dropout", 0.0) or 0.0
    dense = []
    for i, node in enumerate(model.get("dense") or ()):
        node = dict(node)
        extra = set(node) - {"units", "dropout"}
        if extra:
            raise ConfigError(f"model.dense.{i}.{sorted(extra)[0]} is not a known key; "
                              "allowed: units, dropout")
        rate = node.get("dropout")
        with _prefixed("dense.", f"model.dense.{i}."):
            dense.append(DenseConfig(node.get("units"), default_dropout if rate is None else rate))
    out_dropout = model.get("out_dropout")
    return ModelConfig(
        conv=tuple(blocks),
        dense=tuple(dense),
        out_dropout=default_dropout if out_dropout is None else out_dropout,
        activation=activation,
        init=model.get("init", "nielsen"),
        dropout_form=model.get("dropout_form", "inverted"),
        num_classes=model.get("num_classes", 10),
        input_shape=tuple(model.get("input_shape", (28, 28, 1))),
        name=model.get("name", "convnet"),
        conv_impl=model.get("conv_impl", "auto"),
    )


def load_plugins(modules: Sequence[str]) -> None:
    """Import the named modules so that the components they register exist."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"plugins: cannot import {module!r}: {err}") from err


def from_mapping(cfg: Mapping[str, Any]) -> Config:
    """Build a validated Config from a plain nested dict (the resolved Hydra config)."""
    plugins = tuple(cfg.get("plugins") or ())
    load_plugins(plugins)
    activation = cfg.get("activation", {})
    activation = activation.get("name") if isinstance(activation, Mapping) else activation
    model = model_from_mapping(cfg.get("model", {}), cfg.get("pooling", {}), activation)
    return Config(
        model=model,
        optimizer=_build(OptimizerConfig, cfg.get("optimizer", {}), "optimizer"),
        data=_build(DataConfig, cfg.get("data", {}), "data"),
        train=_build(TrainConfig, cfg.get("train", {}), "train"),
        seed=cfg.get("seed", 0),
        plugins=plugins,
    )


def from_dictconfig(cfg: Any) -> Config:
    """Convert Hydra's DictConfig (resolving interpolations) into a validated Config."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return from_mapping(container)


def to_dict(cfg: Config) -> dict[str, Any]:
    """A JSON-ready dict of a Config."""
    return dataclasses.asdict(cfg)
