"""Frozen, validated run configuration, and its one reader.

The YAML under model / optimizer / data / train is exactly these dataclasses' fields (under
model: those of the registered model's config dataclass, chosen by `model.arch`, default
convnet = ModelConfig); `from_mapping` turns a plain mapping (Hydra's resolved config, or a
run's config.json) into a Config, and `from_dictconfig` is the only reader of Hydra's
DictConfig. Names of components (pools, activations, init schemes, optimizers, conv
implementations, models, datasets) are checked against their live registries, so plugins count.
The model's input shape and class count are the data's (`Config` sets them).

The dataclasses' defaults are the command line's: `Config()` is what `python -m
experiments.train` trains with no arguments (the conf/ nodes under the YAML are built from
these dataclasses, hydra_plugins/cnn_jax_schema).
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnn_jax.data import registry as data_registry
from cnn_jax.data.source import dataset_of
from cnn_jax.data.splits import PROTOCOLS
from cnn_jax.geometry import PADDINGS, output_size

ORDERS = ("pool_act", "act_pool")
DROPOUT_FORMS = ("inverted", "nielsen")
SCHEDULES = ("constant", "cosine", "onecycle")
SOURCES = ("auto", "idx", "tfds")


class ConfigError(ValueError):
    """A configuration value is out of range; the message is one line naming it."""


def _one_of(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")


def _registry(module: str, registry: str) -> tuple[str, ...]:
    """The names registered in `module.registry`, imported when first needed (not at import
    time: the registries of init schemes and optimizers live in the layers above config)."""
    return tuple(getattr(importlib.import_module(module), registry))


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
        if self.kind != PoolConfig.kind:  # the default is built in (and needs no JAX import)
            _one_of("pooling.kind", self.kind, _registry("cnn_jax.ops.pooling", "POOLS"))
        _positive_int("pooling.window", self.window)
        if self.stride is not None:
            _positive_int("pooling.stride", self.stride)
        if not isinstance(self.p, int | float) or self.p < 1.0:
            raise ConfigError(f"pooling.p={self.p!r} must be a number >= 1")

    @property
    def effective_stride(self) -> int:
        """The stride its windows move by: its kind's (`cnn_jax.ops.pooling.PoolKind.stride`)."""
        return pool_entry(self.kind).stride(self.window, self.stride)


def pool_entry(kind: str) -> Any:
    """The registered `PoolKind` of `kind`: its function and its windows' geometry (imported
    when needed: the pool registry loads JAX)."""
    return importlib.import_module("cnn_jax.ops.pooling").pool_kind(kind)


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

    The defaults are the command line's default net (`model=fast`): conv 16@5x5 -> ReLU ->
    2x2 max-pool, conv 32@5x5 -> ReLU -> 2x2 max-pool, FC 128, softmax; He init.

    input_shape and num_classes: inside a Config, the data's (Config sets them from its
    dataset's entry); the defaults are MNIST's, for a ModelConfig used on its own.
    conv_impl: how conv2d computes ("auto": im2col patches on CPU, XLA's convolution elsewhere).
    """

    conv: tuple[ConvBlockConfig, ...] = field(default_factory=lambda: (
        ConvBlockConfig(16, order="act_pool"), ConvBlockConfig(32, order="act_pool")))
    dense: tuple[DenseConfig, ...] = (DenseConfig(128),)
    out_dropout: float = 0.0
    activation: str = "relu"
    init: str = "he"
    dropout_form: str = "inverted"
    num_classes: int = 10
    input_shape: tuple[int, int, int] = (28, 28, 1)
    name: str = "fast"
    conv_impl: str = "auto"

    def __post_init__(self) -> None:
        _rate("model.out_dropout", self.out_dropout)
        _one_of("model.conv_impl", self.conv_impl, _registry("cnn_jax.ops.conv", "IMPLS"))
        _one_of("model.activation", self.activation,
                _registry("cnn_jax.ops.activations", "ACTIVATIONS"))
        _one_of("model.init", self.init, _registry("cnn_jax.models.init", "INIT_SCHEMES"))
        _one_of("model.dropout_form", self.dropout_form, DROPOUT_FORMS)
        _positive_int("model.num_classes", self.num_classes)


def layer_shapes(model: ModelConfig) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Per conv block, the (h, w) after its convolution and after its pool (the same when it
    has none), from model.input_shape; a kernel or pool window larger than its input is a
    one-line ConfigError naming the layer. The one walk of a ConvNet's spatial sizes."""
    h, w, _ = model.input_shape
    shapes = []
    for i, block in enumerate(model.conv):
        if block.padding == "VALID" and block.kernel > min(h, w):
            raise ConfigError(
                f"model.conv.{i}.kernel={block.kernel} is larger than its {h}x{w} input; "
                f"allowed: <= {min(h, w)}"
            )
        h = output_size(h, block.kernel, block.stride, block.padding)
        w = output_size(w, block.kernel, block.stride, block.padding)
        conv = (h, w)
        try:
            h, w = pool_entry(block.pool.kind).output_hw(h, w, block.pool.window,
                                                         block.pool.stride)
        except ValueError:  # its window is larger than the maps
            raise ConfigError(
                f"model.conv.{i}.pool.window={block.pool.window} is larger than its "
                f"{h}x{w} input; allowed: <= {min(h, w)}"
            ) from None
        shapes.append((conv, (h, w)))
    return shapes


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and its L2 term; `l2` is Nielsen's lambda (divided by the minibatch count).
    Default: Adam, one-cycle schedule to lr 0.003 (the command line's `optimizer=adam`)."""

    name: str = "adam"
    lr: float = 0.003
    momentum: float = 0.0
    l2: float = 0.0
    schedule: str = "onecycle"
    warmup_fraction: float = 0.2
    label_smoothing: float = 0.0
    b1: float = 0.9  # Adam's decay rates of the first and second moment estimates
    b2: float = 0.999

    def __post_init__(self) -> None:
        _one_of("optimizer.name", self.name, _registry("cnn_jax.train.optim", "OPTIMIZERS"))
        if not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ConfigError(f"optimizer.lr={self.lr!r} must be a number > 0")
        if not isinstance(self.l2, int | float) or self.l2 < 0:
            raise ConfigError(f"optimizer.l2={self.l2!r} must be a number >= 0")
        _rate("optimizer.momentum", self.momentum)
        _one_of("optimizer.schedule", self.schedule, SCHEDULES)
        _rate("optimizer.warmup_fraction", self.warmup_fraction)
        _rate("optimizer.label_smoothing", self.label_smoothing)
        _rate("optimizer.b1", self.b1)
        _rate("optimizer.b2", self.b2)


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, where its files are, which split protocol, whether to expand it.

    name: an entry of `cnn_jax.data.DATASETS`, or with source="tfds" any TFDS image
    classification dataset. dir: the folder holding its IDX files; None: the entry's
    environment variable ($CNN_JAX_MNIST_DIR for MNIST) when set, else its default folder.
    protocol: nielsen (MNIST's 50k / 10k), full (val = test) or holdout (the dataset's own
    validation split, else the last tenth of train).
    """

    name: str = "mnist"
    dir: str | None = None
    source: str = "auto"
    protocol: str = "nielsen"
    expand: bool = False
    train_limit: int | None = None
    val_limit: int | None = None
    test_limit: int | None = None
    data_dir: str | None = None
    manual_dir: str | None = None

    def __post_init__(self) -> None:
        _one_of("data.source", self.source, SOURCES)
        unknown = data_registry.name_error(self.name, self.source)
        if unknown:
            raise ConfigError(unknown)
        _one_of("data.protocol", self.protocol, PROTOCOLS)
        for name in ("train_limit", "val_limit", "test_limit"):
            if getattr(self, name) is not None:
                _positive_int(f"data.{name}", getattr(self, name))


SEED_BATCHING = ("auto", "vmap", "loop")


@dataclass(frozen=True)
class TrainConfig:
    """Epochs, minibatch size, seeds trained together, shuffling, evaluation batch size.

    vote: also report the plurality vote of the seeds' best-validation nets on the test set.
    test_errors: also write test_errors.json, the test images each seed's best-validation net
    gets wrong ([index, label, predicted]): what a vote of nets from several runs is computed
    from (`cnn_jax.train.ensemble.vote_errors`).
    devices: data parallel over this many JAX devices (each minibatch sharded along its batch
    axis, parameters replicated); 1 = a single device.
    seed_batching: how the seeds are trained: "vmap" (one batched program), "loop" (one
    compiled one-seed program, called for each seed), "auto" (loop on CPU, else vmap).
    concurrent_seeds: in a loop, how many seeds run at once, each call in its own thread
    (XLA:CPU runs concurrent calls side by side); None: one per CPU core the process may use;
    always 1 with devices > 1. The results are the same for any value.
    compile_cache: directory where the CLI keeps compiled programs between runs (None: off).
    resume: "auto" (continue a checkpoint of the same config in the run dir; another config
    there is an error), True (continue any checkpoint), False (start over, even a finished
    run of the same config).
    max_loss: a seed whose epoch training loss exceeds this (or is not finite) has diverged;
    None: only a non-finite loss counts.
    """

    epochs: int = 3
    batch_size: int = 64
    seeds: int = 1
    shuffle: bool = True
    eval_batch_size: int = 1000
    resume: bool | str = "auto"
    checkpoint: bool = True
    progress: bool = True
    vote: bool = False
    test_errors: bool = False
    devices: int = 1
    seed_batching: str = "auto"
    concurrent_seeds: int | None = None
    compile_cache: str | None = None
    max_loss: float | None = 100.0

    def __post_init__(self) -> None:
        _positive_int("train.epochs", self.epochs)
        _positive_int("train.batch_size", self.batch_size)
        _positive_int("train.seeds", self.seeds)
        _positive_int("train.eval_batch_size", self.eval_batch_size)
        _positive_int("train.devices", self.devices)
        _one_of("train.seed_batching", self.seed_batching, SEED_BATCHING)
        if self.concurrent_seeds is not None:
            _positive_int("train.concurrent_seeds", self.concurrent_seeds)
        if self.resume not in (True, False, "auto"):
            raise ConfigError(f"train.resume={self.resume!r} is not one of auto, true, false")
        if self.max_loss is not None and (isinstance(self.max_loss, bool)
                                          or not isinstance(self.max_loss, int | float)
                                          or not self.max_loss > 0):
            raise ConfigError(f"train.max_loss={self.max_loss!r} must be a number > 0 or null")
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

    model: Any = field(default_factory=ModelConfig)  # ModelConfig or a registered model's config
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    plugins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be an integer >= 0")
        d = self.data
        entry = dataset_of(d.name, d.source, d.data_dir)
        object.__setattr__(self, "model", fit_to_data(self.model, entry.image_shape,
                                                      entry.num_classes))
        if isinstance(self.model, ModelConfig):
            layer_shapes(self.model)  # every kernel and pool window fits the data's images


def check_images_fit(cfg: Config, image_shape: Sequence[int]) -> None:
    """Images of `image_shape` are those of the config's data (arrays handed to `fit` by hand
    must match the dataset the config names)."""
    entry = dataset_of(cfg.data.name, cfg.data.source, cfg.data.data_dir)
    if tuple(image_shape) != tuple(entry.image_shape):
        got, want = ("x".join(map(str, s)) for s in (image_shape, entry.image_shape))
        raise ConfigError(f"the images are {got} but data.name={cfg.data.name!r} has {want} "
                          "images; name the dataset of these arrays (register_dataset for "
                          "your own)")


def fit_to_data(model: Any, image_shape: Sequence[int], num_classes: int) -> Any:
    """`model` (a model config) with the data's input_shape and num_classes, where it declares
    those fields."""
    declared = {f.name for f in dataclasses.fields(model)}
    wanted = {"input_shape": tuple(image_shape), "num_classes": num_classes}
    changes = {k: v for k, v in wanted.items() if k in declared and getattr(model, k) != v}
    return dataclasses.replace(model, **changes) if changes else model


# Where each dataclass's own messages start, so the reader can put the full path there instead.
_OWN_PREFIX = {PoolConfig: "pooling.", ConvBlockConfig: "conv.", DenseConfig: "dense."}


def _join(where: str, key: str | int) -> str:
    return f"{where}.{key}" if where else str(key)


def _field_value(hint: Any, value: Any, where: str) -> Any:
    """A field's value from a plain one: dataclasses and tuples of them read recursively."""
    if dataclasses.is_dataclass(hint):
        return _read(hint, value, where)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigError(f"{where}={value!r} must be a list")
        item = typing.get_args(hint)[0]
        if dataclasses.is_dataclass(item):
            return tuple(_read(item, v, _join(where, i)) for i, v in enumerate(value))
        return tuple(value)
    return value


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _check_type(hint: Any, value: Any, where: str) -> None:
    """A bool / int / float / str field's value is of that type (an int counts as a float)."""
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}.get(hint)
    if ok is not None and not ok(value):
        raise ConfigError(f"{where}={value!r} must be {_TYPE_WORDS[hint]}")


def model_entries() -> dict[str, Any]:
    """The registered models by name (`cnn_jax.models.registry.MODELS`)."""
    return dict(importlib.import_module("cnn_jax.models.registry").MODELS)


def _read_model(values: Any, where: str) -> Any:
    """The config of the model `values["arch"]` names (default convnet: ModelConfig); a
    registered model's fields are also checked for their declared bool / int / float / str."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}={values!r} must be a mapping")
    entries = model_entries()
    arch = values.get("arch", "convnet")
    _one_of(f"{where}.arch", arch, tuple(entries))
    cls = entries[arch].config
    rest = {k: v for k, v in values.items() if k != "arch"}
    if cls is not ModelConfig:
        hints = typing.get_type_hints(cls)
        for k, v in rest.items():
            if k in hints:
                _check_type(hints[k], v, _join(where, k))
    return _read(cls, rest, where)


def _read(cls: type, values: Any, where: str) -> Any:
    """`cls` from a mapping of its field names; unknown or missing keys are one-line errors."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}={values!r} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{_join(where, unknown[0])} is not a known key; "
                          f"allowed: {', '.join(sorted(fields))}")
    missing = [n for n, f in fields.items() if n not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{_join(where, missing[0])} is missing")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _read_model(v, _join(where, k)) if cls is Config and k == "model"
              else _field_value(hints[k], v, _join(where, k)) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError as err:
        own = _OWN_PREFIX.get(cls)
        if own and str(err).startswith(own):
            raise ConfigError(f"{_join(where, str(err)[len(own):])}") from None
        raise


def load_plugins(modules: Sequence[str]) -> None:
    """Import the named modules so that the components they register exist."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"plugins: cannot import {module!r}: {err}") from err


def from_mapping(cfg: Mapping[str, Any]) -> Config:
    """A validated Config from a plain nested mapping: Hydra's resolved config or config.json.

    The keys under model / optimizer / data / train / seed / plugins are the dataclass fields
    (missing ones take their defaults); other top-level keys (Hydra's variables) are ignored.
    Plugins are imported first, so the names they register are valid.
    """
    load_plugins(tuple(cfg.get("plugins") or ()))
    names = {f.name for f in dataclasses.fields(Config)}
    return _read(Config, {k: v for k, v in cfg.items() if k in names}, "")


def from_dictconfig(cfg: Any) -> Config:
    """Convert Hydra's DictConfig (resolving interpolations) into a validated Config."""
    from omegaconf import OmegaConf

    return from_mapping(OmegaConf.to_container(cfg, resolve=True))


def arch_of(model: Any) -> str:
    """The registered name of a model config's model (convnet for a ModelConfig)."""
    for name, entry in model_entries().items():
        if type(model) is entry.config:
            return name
    raise ConfigError(f"model={type(model).__name__} is the config of no registered model; "
                      f"allowed: the configs of {', '.join(model_entries())}")


def to_dict(cfg: Config) -> dict[str, Any]:
    """A JSON-ready dict of a Config; a registered model other than convnet adds `model.arch`."""
    out = dataclasses.asdict(cfg)
    arch = arch_of(cfg.model)
    if arch != "convnet":
        out["model"] = {"arch": arch, **out["model"]}
    return out
