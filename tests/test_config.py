import json

import pytest

from cnn_jax.config import (
    Config,
    ConfigError,
    ConvBlockConfig,
    DenseConfig,
    ModelConfig,
    OptimizerConfig,
    PoolConfig,
    TrainConfig,
    from_mapping,
    to_dict,
)
from experiments.compose import compose_config


def base(**over):
    """A config mapping in the shape of a run's config.json (and of Hydra's resolved config)."""
    model = ModelConfig(conv=(ConvBlockConfig(20),), dense=(DenseConfig(100, 0.25),),
                        out_dropout=0.25, activation="relu", dropout_form="nielsen", name="t")
    opt = OptimizerConfig("sgd", 0.1, schedule="constant")
    cfg = json.loads(json.dumps(to_dict(Config(model, opt, train=TrainConfig(batch_size=10)))))
    cfg["pooling"] = "a Hydra variable, ignored"
    for key, value in over.items():
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return cfg


def test_model_wide_knobs_reach_every_layer():
    cfg = compose_config("model=nielsen_conv2", "pooling=l2", "dropout=0.25", "activation=tanh")
    assert all(b.stride == 1 and b.pool.kind == "l2" and b.pool.effective_stride == 2
               for b in cfg.model.conv)
    assert cfg.model.dense[0].dropout == 0.25 and cfg.model.out_dropout == 0.25
    assert cfg.model.activation == "tanh"
    strided = compose_config("model=nielsen_conv2", "pooling=strided").model  # sets conv_stride: 2
    assert all(b.stride == 2 and b.pool.kind == "none" for b in strided.conv)


def test_per_layer_overrides_win():
    cfg = compose_config("model=nielsen_conv2", "pooling=none", "conv_stride=2",
                      "model.conv.0.stride=3", "model.dense.0.dropout=0.5",
                      "model.conv.1.pool={kind:avg,window:2}")
    assert cfg.model.conv[0].stride == 3 and cfg.model.conv[1].stride == 2
    assert cfg.model.conv[1].pool.kind == "avg" and cfg.model.conv[1].pool.window == 2
    assert cfg.model.conv[0].pool.kind == "none"
    assert cfg.model.dense[0].dropout == 0.5 and cfg.model.out_dropout == 0.0


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("model.conv.0.pool.kind", "foo",
         "model.conv.0.pool.kind='foo' is not one of max, avg, l2, lp, none"),
        ("model.conv.0.stride", 0, "model.conv.0.stride=0 must be an integer >= 1"),
        ("model.conv.0.pool.window", 25,
         "model.conv.0.pool.window=25 is larger than its 24x24 input"),
        ("model.dense.0.dropout", 1.0, "model.dense.0.dropout=1.0 must be a number in [0, 1)"),
        ("optimizer.lr", -0.1, "optimizer.lr=-0.1 must be a number > 0"),
        ("model.activation", "swish2", "model.activation='swish2' is not one of"),
        ("train.epochs", 0, "train.epochs=0 must be an integer >= 1"),
        ("optimizer.name", "lbfgs", "optimizer.name='lbfgs' is not one of"),
        ("model.conv.0.kernel", 30, "model.conv.0.kernel=30 is larger than its 28x28 input"),
        ("model.conv_impl", "fft", "model.conv_impl='fft' is not one of auto, xla, patches"),
        ("train.compile_cache", " ", "train.compile_cache=' ' must be a directory path or null"),
        ("train.resume", "maybe", "train.resume='maybe' is not one of auto, true, false"),
        ("train.max_loss", 0, "train.max_loss=0 must be a number > 0 or null"),
        ("train.concurrent_seeds", 0, "train.concurrent_seeds=0 must be an integer >= 1"),
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
    with pytest.raises(ConfigError, match="model.conv.0.padd is not a known key; allowed: "):
        from_mapping(base(**{"model.conv.0.padd": "SAME"}))
    with pytest.raises(ConfigError, match="model.dense.0.units is missing"):
        from_mapping(base(**{"model.dense": [{"dropout": 0.1}]}))


def test_configs_are_frozen_and_hashable():
    m = ModelConfig(conv=(ConvBlockConfig(20, pool=PoolConfig("l2")),))
    assert hash(m) == hash(ModelConfig(conv=(ConvBlockConfig(20, pool=PoolConfig("l2")),)))
    with pytest.raises(AttributeError):
        m.activation = "relu"
