"""Optimizers by name as optax chains, with Nielsen's L2 term and learning-rate schedules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from cnn_jax.config import OptimizerConfig

Schedule = optax.Schedule | float

OPTIMIZERS: dict[str, Callable[[Schedule, OptimizerConfig], optax.GradientTransformation]] = {
    "sgd": lambda lr, c: optax.sgd(lr),
    "momentum": lambda lr, c: optax.sgd(lr, momentum=c.momentum),
    "nesterov": lambda lr, c: optax.sgd(lr, momentum=c.momentum, nesterov=True),
    "adam": lambda lr, c: optax.adam(lr, b1=c.b1, b2=c.b2),
    "adamw": lambda lr, c: optax.adamw(lr, b1=c.b1, b2=c.b2, weight_decay=1e-4),
}


def register_optimizer(
    name: str, make: Callable[[Schedule, OptimizerConfig], optax.GradientTransformation]
) -> None:
    """Make `make(lr_or_schedule, cfg)` available as optimizer `name`."""
    OPTIMIZERS[name] = make


def weights_only(params: Any) -> Any:
    """A mask pytree: True on weight matrices and kernels, False on biases."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params
    )


def learning_rate(cfg: OptimizerConfig, total_steps: int) -> Schedule:
    """The configured schedule: constant, cosine decay, or one-cycle (warm-up then cosine)."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return optax.cosine_decay_schedule(cfg.lr, max(total_steps, 1))
    return optax.cosine_onecycle_schedule(
        max(total_steps, 1), cfg.lr, pct_start=cfg.warmup_fraction or 0.2,
        div_factor=25.0, final_div_factor=1e3,
    )


def make_optimizer(
    cfg: OptimizerConfig, steps_per_epoch: int, epochs: int = 1
) -> optax.GradientTransformation:
    """The optax chain for `cfg`.

    Nielsen's L2 term adds 0.5 * l2 * sum ||W||^2 / steps_per_epoch to the minibatch cost, on
    weights only; its gradient l2 / steps_per_epoch * W is added before the optimizer.
    """
    try:
        base = OPTIMIZERS[cfg.name]
    except KeyError:
        raise ValueError(f"optimizer={cfg.name!r} is not one of {', '.join(OPTIMIZERS)}") from None
    tx = base(learning_rate(cfg, steps_per_epoch * epochs), cfg)
    if cfg.l2 > 0:
        decay = optax.add_decayed_weights(cfg.l2 / steps_per_epoch, mask=weights_only)
        tx = optax.chain(decay, tx)
    return tx
