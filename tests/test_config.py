import pytest

from cnn_jax.config import (
    ConfigError,
    ConvBlockConfig,
    ModelConfig,
    PoolConfig,
    from_mapping,
)


def base(**over):
    cfg = {
        "model": {
            "name": "t",
            "conv": [{"features": 20, "kernel": 5, "stride": None, "pool": None}],
            "dense": [{"units": 100, "dropout": None}],
            "conv_stride": 1,
            "dropout": 0.25,
            "out_dropout": None,
            "init": "nielsen",
            "dropout_form": "nielsen",
        },
        "pooling": {"kind": "max", "window": 2, "stride": None, "p": 2.0},
        "activation": {"name": "relu"},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "data": {"name": "mnist"},
        "train": {"epochs": 1, "batch_size": 10},
        "seed": 0,
    }
    for key, value in over.items():
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return cfg


def test_defaults_resolve_into_blocks():
    cfg = from_mapping(base(**{"model.conv_stride": 2, "pooling.kind": "l2"}))
    block = cfg.model.conv[0]
    assert block.stride == 2 and block.pool.kind == "l2" and block.pool.effective_stride == 2
    assert cfg.model.dense[0].dropout == 0.25 and cfg.model.out_dropout == 0.25
    assert cfg.model.activation == "relu"


def test_per_layer_overrides_win():
    cfg = from_mapping(
        base(
            **{
                "model.conv.0.stride": 3,
                "model.dense.0.dropout": 0.5,
                "model.conv.0.pool": {"kind": "avg", "window": 3},
            }
        )
    )
    block = cfg.model.conv[0]
    assert block.stride == 3 and block.pool.kind == "avg" and block.pool.window == 3
    assert cfg.model.dense[0].dropout == 0.5


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("pooling.kind", "foo", "pooling.kind='foo' is not one of max, avg, l2, lp, none"),
        ("model.conv.0.stride", 0, "model.conv.0.stride=0 must be an integer >= 1"),
        ("pooling.window", 25, "model.conv.0.pool.window=25 is larger than its 24x24 input"),
        ("model.dense.0.dropout", 1.0, "model.dense.0.dropout=1.0 must be a number in [0, 1)"),
        ("optimizer.lr", -0.1, "optimizer.lr=-0.1 must be a number > 0"),
        ("activation.name", "swish2", "activation.name='swish2' is not one of"),
        ("train.epochs", 0, "train.epochs=0 must be an integer >= 1"),
        ("optimizer.name", "lbfgs", "optimizer.name='lbfgs' is not one of"),
        ("model.conv.0.kernel", 30, "model.conv.0.kernel=30 is larger than its 28x28 input"),
        ("train.compile_cache", " ", "train.compile_cache=' ' must be a directory path or null"),
    ],
)
def test_bad_values_name_value_and_allowed(key, value, message):
    with pytest.raises(ConfigError) as err:
        from_mapping(base(**{key: value}))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match="optimizer.betas is not a known key"):
        from_mapping(base(**{"optimizer.betas": 0.9}))


def test_configs_are_frozen_and_hashable():
    m = ModelConfig(conv=(ConvBlockConfig(20, pool=PoolConfig("l2")),))
    assert hash(m) == hash(ModelConfig(conv=(ConvBlockConfig(20, pool=PoolConfig("l2")),)))
    with pytest.raises(AttributeError):
        m.activation = "relu"


def test_builtin_names_match_the_registries():
    from cnn_jax import config
    from cnn_jax.models.init import INIT_SCHEMES
    from cnn_jax.train.optim import OPTIMIZERS

    assert set(config.OPTIMIZERS) <= set(OPTIMIZERS) and set(config.INITS) <= set(INIT_SCHEMES)
