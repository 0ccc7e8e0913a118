"""The project's Hydra config composed in-process, as the CLI would: compose_cfg(*overrides)."""

from hydra import compose, initialize_config_dir

from cnn_jax.config import Config, from_dictconfig
from experiments.overrides import CONF_DIR


def compose_cfg(*overrides: str) -> Config:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return from_dictconfig(compose("config", overrides=list(overrides)))
