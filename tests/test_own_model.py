"""Your own model: a registered Flax module with its own config dataclass (examples/own_model.py,
a residual net with batch norm) through the reader, `fit`, resume, and a command-line sweep
over its own field that ends in its table."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from tfds_mock_cli import ROOT, train_under_mock

import cnn_jax as cj
from cnn_jax.config import ConfigError, from_mapping, to_dict
from cnn_jax.data import registry
from cnn_jax.experiment import run
from examples.own_model import SmallResNet, SmallResNetConfig
from experiments.compose import compose_config
from experiments.plugins import model_node, plugins_in


@pytest.fixture
def toy_data(monkeypatch):
    """A registered in-memory dataset: 8x8x1 images of 3 classes (60 train, 20 test)."""
    rng = np.random.default_rng(0)

    def part(n):
        y = rng.integers(0, 3, n)
        x = (rng.uniform(0, 60, (n, 8, 8, 1)) + 60 * y[:, None, None, None]).astype(np.uint8)
        return x, y

    parts = (part(60), part(20), None)
    monkeypatch.setitem(registry.DATASETS, "toy",
                        registry.Dataset("toy", (8, 8, 1), 3, load=lambda: parts))
    return cj.DataConfig(name="toy", protocol="full")


def test_a_registered_models_config_round_trips_with_its_arch(toy_data):
    cfg = cj.Config(model=SmallResNetConfig(width=4), data=toy_data)
    assert (cfg.model.input_shape, cfg.model.num_classes) == ((8, 8, 1), 3)  # from the data
    saved = to_dict(cfg)
    assert saved["model"]["arch"] == "small_resnet" and "arch" not in to_dict(cj.Config())["model"]
    assert from_mapping(saved) == cfg


@pytest.mark.parametrize("key,value,message", [
    ("width", "wide", "model.width='wide' must be an integer"),
    ("widht", 4, "model.widht is not a known key; allowed: activation, blocks, dropout, "
                 "input_shape, num_classes, width"),
    ("blocks", 0, "model.blocks=0 must be >= 1"),  # the config's own check
    ("activation", "nope", "model.activation='nope' is not one of"),
    ("arch", "nonet", "model.arch='nonet' is not one of convnet, "),
])  # fmt: skip
def test_a_registered_models_config_is_read_with_one_line_errors(key, value, message):
    mapping = {"model": {"arch": "small_resnet", key: value}}
    with pytest.raises(ConfigError) as err:
        from_mapping(mapping)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_one_config_class_cannot_serve_two_models():
    with pytest.raises(ConfigError, match="config SmallResNetConfig is already model "
                                          "'small_resnet'; give each model its own"):
        cj.register_model("another_name", SmallResNetConfig, SmallResNet)


def test_the_model_wide_knobs_reach_the_fields_that_declare_them(forget_plugin_models):
    node = model_node("small_resnet", SmallResNetConfig)
    assert node["activation"] == "${activation.name}" and node["dropout"] == "${dropout}"
    assert node["width"] == 16 and node["arch"] == "small_resnet"
    cfg = compose_config("plugins=[examples.own_model]", "model=small_resnet", "model.width=5",
                         "activation=tanh", "dropout=0.25")
    assert cfg.model == SmallResNetConfig(width=5, activation="tanh", dropout=0.25)
    assert plugins_in(["plugins=[a.b,c]", "seed=1", "+plugins=d"]) == ["a.b", "c", "d"]


def _tiny(data, **train):
    return cj.Config(model=SmallResNetConfig(width=4, blocks=1), data=data,
                     optimizer=cj.OptimizerConfig(name="adam", lr=0.01, schedule="constant"),
                     train=cj.TrainConfig(batch_size=10, progress=False, **train))


def test_fit_updates_batch_stats_per_seed_and_evaluates_with_them(toy_data):
    cfg = _tiny(toy_data, epochs=2, seeds=2)
    program = cj.build(cfg, cj.load_splits(cfg.data))
    before = program.fresh().state.params["batch_stats"]
    result = cj.run_epochs(program)
    after = result.progress.state.params["batch_stats"]
    for old, new in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after),
                        strict=True):
        assert new.shape[0] == 2 and not np.allclose(old, new)  # one set per seed, trained
    assert not np.allclose(*jax.tree_util.tree_leaves(after)[0])  # the seeds' differ
    # evaluation uses the running statistics: the same params evaluate the same every time
    best = result.progress.best_params
    np.testing.assert_array_equal(program.evaluate(best)["test"], program.evaluate(best)["test"])
    assert all(r["status"] == "ok" for r in result.per_seed)


def test_a_resumed_run_of_a_registered_model_equals_an_uninterrupted_one(toy_data, tmp_path):
    straight = run(_tiny(toy_data, epochs=2), tmp_path / "straight")
    run(_tiny(toy_data, epochs=1), tmp_path / "resumed")
    resumed = run(_tiny(toy_data, epochs=2), tmp_path / "resumed")
    assert resumed["resumed_from"] == 1 and resumed["epochs"] == 2  # continued after epoch 1
    assert resumed["per_seed"] == straight["per_seed"]
    assert straight["model"] == "small_resnet" and straight["params"] > 0
    assert straight["flops_per_image"] is None


@pytest.mark.slow  # about 35 to 50 s: two jobs of two seeds, each compiling
def test_cli_sweep_of_a_plugin_model_over_its_own_field_writes_its_table(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = ["-m", "plugins=[examples.own_model]",
           "model=small_resnet", "model.width=2,4", "model.blocks=1", "data=tfds",
           "data.name=cifar10", f"data.data_dir={tmp_path / 'tfds'}", "train.seeds=2",
           "train.epochs=1", "train.batch_size=12", "logger=none", "train.compile_cache=null",
           f"hydra.sweep.dir={sweep}"]
    proc = train_under_mock(*cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job, width in (("0", 2), ("1", 4)):
        config = json.loads((sweep / job / "config.json").read_text())
        assert config["model"]["arch"] == "small_resnet" and config["model"]["width"] == width
        assert config["model"]["input_shape"] == [32, 32, 3]
        assert json.loads((sweep / job / "metrics.json").read_text())["status"] == "ok"
    table = (sweep / "table.md").read_text()
    assert "| model.width=2 " in table and "| model.width=4 " in table
    assert "vs best" in table and "Holm" in table  # significance columns


def test_an_unknown_plugin_model_is_a_one_line_group_error():
    proc = subprocess.run([sys.executable, "-m", "experiments.train", "model=small_resnet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model='small_resnet' is "
                                                           "not one of")


def test_params_of_a_seed_and_short_summaries(toy_data):
    cfg = _tiny(toy_data, epochs=1, seeds=2)
    cfg = dataclasses.replace(cfg, seed=3)  # seeds 3 and 4
    result = cj.fit(cfg, cj.load_splits(cfg.data))
    one = result.params_of(4)
    stacked = result.progress.best_params
    for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(stacked),
                    strict=True):
        np.testing.assert_array_equal(a, b[1])  # seed 4 is the second on the seed axis
    with pytest.raises(ValueError, match="seed=0 is not one of this fit's seeds 3, 4"):
        result.params_of(0)
    assert repr(result).startswith("FitResult(epochs=1, test_acc at best val {3: ")
    assert repr(result.progress).startswith("Progress(epochs done 1, seeds 2, ")
    assert len(repr(result)) < 200 and len(repr(result.progress)) < 200


def test_the_summary_lists_a_registered_models_own_layers(forget_plugin_models, capsys):
    from cnn_jax.models.summary import model_costs
    from experiments.summary import main

    overrides = ["plugins=[examples.own_model]", "model=small_resnet", "model.width=4",
                 "model.blocks=1"]
    assert main(overrides) == 0
    head, columns, *rows, total = capsys.readouterr().out.strip().splitlines()
    assert head.startswith("model small_resnet: small_resnet(width=4, blocks=1, ")
    assert head.endswith(", input 28x28x1") and columns.split()[0] == "layer"
    names = [row.split()[0] for row in rows]
    assert names[0] == "Conv_0" and names[-1] == "Dense_0"  # the order of the forward pass
    assert "BatchNorm_0" in names and all(row.split()[-1] == "-" for row in rows)
    assert rows[-1].split()[1] == "10"  # Dense_0's output: the class scores
    params = model_costs(SmallResNetConfig(width=4, blocks=1))[0]
    assert total.split()[1:] == [f"{params:,}", "-"]


def test_inspect_run_draws_a_registered_models_run(toy_data, tmp_path, capsys):
    from experiments.inspect_run import main

    run(_tiny(toy_data, epochs=1), tmp_path / "run")
    assert main([str(tmp_path / "run"), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "note: model small_resnet is not a ConvNet: no filters.png or feature_maps.png" in out
    drawn = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert drawn == ["confusion.png", "curves.png", "mistakes.png"]
    assert all((tmp_path / "figs" / name).stat().st_size > 5000 for name in drawn)
