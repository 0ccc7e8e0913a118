"""Per-layer table (output shape, params, FLOPs/image) of a configured model.

`python -m experiments.summary [group=option ...] [key=value ...]`, e.g. `model=nielsen_conv1`;
a plugin's model too (`'plugins=[examples.own_model]' model=small_resnet`: its top-level
submodules, FLOPs not computed).
"""

from __future__ import annotations

import sys

from cnn_jax.errors import first_line
from experiments.compose import compose_config
from experiments.overrides import bad_group_choice
from experiments.plugins import load_cli_plugins


def summary_text(overrides: list[str]) -> str:
    """Compose the Hydra config with `overrides` and format its model's layer table."""
    from cnn_jax.config import ModelConfig
    from cnn_jax.data.source import dataset_of
    from cnn_jax.models.summary import describe, format_table, model_name

    run = compose_config(*overrides)
    cfg, data = run.model, run.data
    image = dataset_of(data.name, data.source, data.data_dir).image_shape
    shape = "x".join(map(str, image))
    if isinstance(cfg, ModelConfig):
        pools = ", ".join(f"conv{i} {b.pool.kind}" for i, b in enumerate(cfg.conv))
        what = f"activation {cfg.activation}, input {shape}" + (f", pooling: {pools}" if pools
                                                                 else "")
    else:
        what = f"{describe(cfg)}, input {shape}"
    return f"model {model_name(cfg)}: {what}\n{format_table(cfg, image)}"


def main(argv: list[str] | None = None) -> int:
    """Print the table; a bad override is a one-line error and exit status 2."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in overrides):
        print(__doc__.strip())
        return 0
    load_cli_plugins(overrides)  # a plugin's models are options of the model group
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
