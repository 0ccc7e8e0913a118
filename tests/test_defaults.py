"""One set of defaults: the command line composes cnn_jax.config's dataclass defaults, and run
identities are measured as they were before the defaults moved there."""

from __future__ import annotations

import dataclasses

import pytest

import cnn_jax as cj
from cnn_jax.config import to_dict
from cnn_jax.data import registry
from cnn_jax.results.rundir import config_id
from experiments.compose import compose_config


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch):
    for entry in registry.DATASETS.values():
        if entry.dir_env:
            monkeypatch.delenv(entry.dir_env, raising=False)


def test_the_default_command_trains_the_library_default_config():
    cli = compose_config()
    lib = cj.Config()
    # the command line's own: the data folder written out, its compile cache on
    assert cli.data.dir == registry.folder(lib.data) and lib.data.dir is None
    assert cli.train.compile_cache and lib.train.compile_cache is None
    same = dataclasses.replace(cli, data=dataclasses.replace(cli.data, dir=None),
                               train=dataclasses.replace(cli.train, compile_cache=None))
    assert same == lib


def test_the_library_defaults_are_the_command_lines():
    lib = cj.Config()
    assert (lib.train.epochs, lib.train.batch_size) == (3, 64)
    assert (lib.optimizer.name, lib.optimizer.lr, lib.optimizer.schedule) == ("adam", 0.003,
                                                                              "onecycle")
    assert [b.features for b in lib.model.conv] == [16, 32] and lib.model.name == "fast"


@pytest.mark.parametrize("override, read", [
    ("optimizer.b1=0.8", lambda c: c.optimizer.b1), ("pooling.window=3",
                                                      lambda c: c.model.conv[0].pool.window),
    ("pooling.p=3.0", lambda c: c.model.conv[0].pool.p),
    ("model.conv_impl=xla", lambda c: c.model.conv_impl),
    ("model.out_dropout=0.25", lambda c: c.model.out_dropout),
    ("data.val_limit=5", lambda c: c.data.val_limit),
    ("train.max_loss=5.0", lambda c: c.train.max_loss)])
def test_a_key_no_option_states_is_still_set_on_the_command_line(override, read):
    value = override.split("=")[1]
    for option in ("optimizer=sgd", "pooling=avg", "model=nielsen_conv1", "data=fashion_mnist"):
        assert str(read(compose_config(option, override))) == value


def test_the_knobs_default_to_the_layers_defaults():
    model = compose_config("model=nielsen_conv2").model
    block, dense = cj.ConvBlockConfig(1), cj.DenseConfig(1)
    assert all(b.stride == block.stride and b.pool == block.pool for b in model.conv)
    assert model.dense[0].dropout == dense.dropout == model.out_dropout
    assert compose_config("model=nielsen_fc").model.activation == cj.ModelConfig().activation


def test_data_dir_is_the_folder_of_the_named_dataset(monkeypatch, tmp_path):
    fashion = registry.DATASETS["fashion_mnist"]
    assert compose_config("data.name=fashion_mnist").data.dir == fashion.default_dir
    monkeypatch.setenv(fashion.dir_env, str(tmp_path))
    assert compose_config("data=fashion_mnist").data.dir == str(tmp_path)
    assert compose_config("data=tfds").data.dir is None


def _id(**parts):
    return config_id(to_dict(cj.Config(**parts)))


def test_run_ids_are_those_given_before_the_defaults_moved():
    """Ids (run dir names) of configs as the code before the library took the command line's
    defaults named them (computed there): a run dir made then is found by the same config now."""
    block, dense = cj.ConvBlockConfig, cj.DenseConfig
    mnist = cj.DataConfig(dir="../shared/data/mnist")
    # the library's default config then
    assert _id(model=cj.ModelConfig(conv=(), dense=(dense(100),), activation="sigmoid",
                                    init="nielsen", name="convnet"),
               optimizer=cj.OptimizerConfig("sgd", lr=0.1, momentum=0.9, schedule="constant"),
               train=cj.TrainConfig(epochs=1, batch_size=10)) == "44136fa355"
    # the command line's default run (its data folder written out)
    assert _id(data=mnist) == "1874e777d9"
    # Nielsen's row 3
    assert _id(model=cj.ModelConfig(conv=(block(20), block(40)), dense=(dense(100),),
                                    activation="sigmoid", init="nielsen", dropout_form="nielsen",
                                    name="nielsen_conv2"),
               optimizer=cj.OptimizerConfig("sgd", lr=0.1, schedule="constant"), data=mnist,
               train=cj.TrainConfig(epochs=60, batch_size=10, shuffle=False,
                                    seeds=3)) == "61b68790c9"
