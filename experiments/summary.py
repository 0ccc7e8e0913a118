"""Per-layer table (output shape, params, FLOPs/image) of a configured model.

`python -m experiments.summary [group=option ...] [key=value ...]`, e.g. `model=nielsen_conv1`.
"""

from __future__ import annotations

import sys

from cnn_jax.errors import first_line
from experiments.compose import compose_config
from experiments.overrides import bad_group_choice


def summary_text(overrides: list[str]) -> str:
    """Compose the Hydra config with `overrides` and format its model's layer table."""
    from cnn_jax.models import format_table

    cfg = compose_config(*overrides).model
    shape = "x".join(map(str, cfg.input_shape))
    pools = ", ".join(f"conv{i} {b.pool.kind}" for i, b in enumerate(cfg.conv))
    head = f"model {cfg.name}: activation {cfg.activation}, input {shape}"
    head += f", pooling: {pools}" if pools else ""
    return f"{head}\n{format_table(cfg)}"


def main(argv: list[str] | None = None) -> int:
    """Print the table; a bad override is a one-line error and exit status 2."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in overrides):
        print(__doc__.strip())
        return 0
    error = bad_group_choice(overrides)
    if error is None:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        from cnn_jax.config import ConfigError

        try:
            print(summary_text(overrides))
            return 0
        except (HydraException, OmegaConfBaseException, ConfigError, ValueError) as exc:
            error = first_line(exc)
    print(f"error: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
