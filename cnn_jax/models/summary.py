"""Parameter counts and a per-layer table (output shape, params, FLOPs per image)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from cnn_jax.config import ModelConfig, arch_of, layer_shapes
from cnn_jax.ops.pooling import pool_kind


class LayerRow(NamedTuple):
    name: str
    output_shape: tuple[int, ...]
    params: int
    flops: int


def count_params(params: Any) -> int:
    """Number of scalars in a parameter pytree (leading seed axis included if present)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


def layer_table(cfg: ModelConfig) -> list[LayerRow]:
    """Per layer: output shape, parameters, forward FLOPs per image (2 per multiply-add).

    Pooling counts one op per window element; bias adds and activations one op per output.
    """
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


def format_table(cfg: ModelConfig) -> str:
    """The per-layer table as aligned text, with totals."""
    lines = [f"{'layer':<8} {'output':>14} {'params':>10} {'FLOPs/image':>13}"]
    for r in layer_table(cfg):
        shape = "x".join(map(str, r.output_shape))
        lines.append(f"{r.name:<8} {shape:>14} {r.params:>10,} {r.flops:>13,}")
    total_params, total_flops = config_param_count(cfg), flops_per_image(cfg)
    lines.append(f"{'total':<8} {'':>14} {total_params:>10,} {total_flops:>13,}")
    return "\n".join(lines)
