"""Data parallelism with `jax.sharding`: each minibatch split over a 1-D device mesh.

The state and the data sets are replicated; inside the jitted epoch every gathered minibatch is
constrained to be sharded along its batch axis, and XLA's SPMD partitioner inserts the gradient
all-reduce. The program is the same as on one device, so the numbers agree to float rounding.
Try it on a CPU with `XLA_FLAGS=--xla_force_host_platform_device_count=2`.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cnn_jax.config import ConfigError

DATA_AXIS = "data"


def data_mesh(devices: int) -> Mesh:
    """A 1-D mesh over the first `devices` JAX devices, axis name DATA_AXIS."""
    available = jax.devices()
    if not 1 <= devices <= len(available):
        raise ConfigError(f"train.devices={devices} is not in 1..{len(available)} "
                         f"(the visible {jax.default_backend()} devices)")
    return Mesh(np.array(available[:devices]), (DATA_AXIS,))


def batch_axis_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh, other axes whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array of `tree` copied to every device of `mesh`."""
    return jax.device_put(tree, replicated(mesh))


def constrain_batch(x: jax.Array, sharding: NamedSharding | None) -> jax.Array:
    """`x` with its leading axis sharded as `sharding` says (unchanged when None)."""
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)
