"""Parameter counts and a per-layer table (output shape, params, FLOPs per image) of any
registered model: a ConvNet's from its config, another model's from an abstract forward pass
(its top-level submodules, FLOPs not computed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.config import ModelConfig, arch_of, layer_shapes
from cnn_jax.ops.pooling import pool_kind


class LayerRow(NamedTuple):
    name: str
    output_shape: tuple[int, ...]
    params: int
    flops: int | None  # None: not computed (a model other than a ConvNet)


def count_params(params: Any) -> int:
    """Number of scalars in a parameter pytree (leading seed axis included if present)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


def model_name(cfg: Any) -> str:
    """A model config's name: a ConvNet's `name`, another model's registered name."""
    return cfg.name if isinstance(cfg, ModelConfig) else arch_of(cfg)


def layer_table(cfg: Any, input_shape: Sequence[int] | None = None) -> list[LayerRow]:
    """Per layer: output shape, parameters, forward FLOPs per image (2 per multiply-add).

    A ConvNet's layers from its config: pooling counts one op per window element; bias adds and
    activations one op per output. Another registered model's top-level submodules in call
    order (`module_table`), for images of `input_shape` (default: its config's).
    """
    if not isinstance(cfg, ModelConfig):
        return module_table(cfg, input_shape or cfg.input_shape)
    h, w, c = cfg.input_shape
    rows = []
    for i, (b, ((ch, cw), (h, w))) in enumerate(zip(cfg.conv, layer_shapes(cfg), strict=True)):
        conv_flops = 2 * b.kernel * b.kernel * c * b.features * ch * cw
        params = b.kernel * b.kernel * c * b.features + b.features
        kind = pool_kind(b.pool.kind)
        pool_flops = kind.area(b.pool.window) * h * w * b.features if kind.pools else 0
        c = b.features
        rows.append(LayerRow(f"conv{i}", (h, w, c), params,
                             conv_flops + pool_flops + 2 * h * w * c))
    n_in = h * w * c
    for i, units in enumerate([d.units for d in cfg.dense] + [cfg.num_classes]):
        name = f"dense{i}" if i < len(cfg.dense) else "output"
        rows.append(LayerRow(name, (units,), n_in * units + units, 2 * n_in * units + 2 * units))
        n_in = units
    return rows


def module_table(cfg: Any, input_shape: Sequence[int]) -> list[LayerRow]:
    """Per top-level submodule of a registered model, in the order it is called: its output
    shape and parameters (mutable collections such as batch_stats not counted), from an
    abstract evaluation-mode pass over one image of `input_shape`; FLOPs None."""
    from cnn_jax.models.registry import make_model

    model = make_model(cfg)
    x = jnp.zeros((1, *input_shape), jnp.float32)
    called: list[str] = []  # the top-level submodules, in the order the pass calls them

    def top_level(module: Any, method: str) -> bool:
        if method == "__call__" and len(module.scope.path) == 1 and module.name not in called:
            called.append(module.name)
        return method == "__call__"

    def shapes(key: jax.Array) -> tuple[Any, Any]:
        variables = model.init({"params": key}, x)
        _, state = model.apply(variables, x, capture_intermediates=top_level,
                               mutable=["intermediates"])
        return variables["params"], state["intermediates"]

    params, outputs = jax.eval_shape(shapes, jax.random.PRNGKey(0))
    rows = [LayerRow(name, tuple(outputs[name]["__call__"][0].shape[1:]),
                     count_params(params.get(name, {})), None) for name in called]
    own = count_params(params) - sum(r.params for r in rows)  # the model's own, outside them
    if own:
        rows.append(LayerRow("(own)", tuple(outputs["__call__"][0].shape[1:]), own, None))
    return rows


def flops_per_image(cfg: ModelConfig) -> int:
    """Forward FLOPs per image, summed over layers."""
    return sum(r.flops for r in layer_table(cfg))


def config_param_count(cfg: ModelConfig) -> int:
    """Parameters of the network described by `cfg` (no initialisation needed)."""
    return sum(r.params for r in layer_table(cfg))


def model_costs(cfg: Any) -> tuple[int, int | None]:
    """(parameters, forward FLOPs per image) of any registered model's config; a ConvNet's from
    its layer table, another model's parameters from an abstract init (its mutable collections,
    e.g. batch_stats, not counted) and FLOPs None (not computed)."""
    if isinstance(cfg, ModelConfig):
        return config_param_count(cfg), flops_per_image(cfg)
    from cnn_jax.models.forward import init_params
    from cnn_jax.models.registry import make_model, mutable_of

    model = make_model(cfg)
    shapes = jax.eval_shape(lambda k: init_params(model, k), jax.random.PRNGKey(0))
    return count_params(shapes["params"] if mutable_of(model) else shapes), None


def describe(cfg: Any) -> str:
    """One line naming a model: a ConvNet's layers, another model's config fields."""
    if not isinstance(cfg, ModelConfig):
        fields = ", ".join(f"{f}={getattr(cfg, f)!r}" for f in cfg.__dataclass_fields__)
        return f"{arch_of(cfg)}({fields})"
    layers = [f"conv {b.features}@{b.kernel}x{b.kernel}"
              + (f" {b.pool.kind}-pool" if pool_kind(b.pool.kind).pools else "") for b in cfg.conv]
    layers += [f"FC{layer.units}" for layer in cfg.dense]
    return f"{', '.join(layers) or 'softmax only'}, {cfg.activation}"


def format_table(cfg: Any, input_shape: Sequence[int] | None = None) -> str:
    """The per-layer table (`layer_table`) as aligned text, with totals; FLOPs not computed
    show as "-"."""
    rows = layer_table(cfg, input_shape)
    width = max(8, *(len(r.name) for r in rows))
    flops = lambda n: "-" if n is None else f"{n:,}"  # noqa: E731
    lines = [f"{'layer':<{width}} {'output':>14} {'params':>10} {'FLOPs/image':>13}"]
    for r in rows:
        shape = "x".join(map(str, r.output_shape))
        lines.append(f"{r.name:<{width}} {shape:>14} {r.params:>10,} {flops(r.flops):>13}")
    total_flops = None if any(r.flops is None for r in rows) else sum(r.flops for r in rows)
    total = f"{sum(r.params for r in rows):>10,} {flops(total_flops):>13}"
    lines.append(f"{'total':<{width}} {'':>14} {total}")
    return "\n".join(lines)
