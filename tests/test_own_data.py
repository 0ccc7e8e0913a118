"""Your own data: the dataset registry, the one split rule, any TFDS image classification
dataset by name (TFDS's mock data, no network) through `fit` and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tfds_mock_cli import train_under_mock

import cnn_jax as cj
from cnn_jax.config import ConfigError, from_mapping, to_dict
from cnn_jax.data import DataError, load_splits, registry, source, split
from cnn_jax.data.splits import validation_note
from cnn_jax.train.watch import header_lines


def pairs(n_train: int, n_test: int, shape=(4, 4, 1)):
    """(images, labels) whose images hold their own index, so slices can be told apart."""
    tx = np.arange(n_train, dtype=np.uint8)[:, None, None, None] * np.ones(shape, np.uint8)
    sx = (100 + np.arange(n_test, dtype=np.uint8))[:, None, None, None] * np.ones(shape, np.uint8)
    return (tx, np.arange(n_train) % 3), (sx, np.arange(n_test) % 3)


def test_split_rule_of_each_protocol():
    train, test = pairs(20, 5)
    s = split(train, test, "full")
    assert len(s.train_y) == 20 and np.array_equal(s.val_x, test[0])
    s = split(train, test, "holdout")  # no validation split: the last tenth of train
    assert (len(s.train_y), len(s.val_y)) == (18, 2)
    assert s.val_x[:, 0, 0, 0].tolist() == [18, 19] and np.array_equal(s.test_x, test[0])
    own = pairs(3, 1)[0]
    s = split(train, test, "holdout", validation=own)
    assert len(s.train_y) == 20 and np.array_equal(s.val_x, own[0])
    with pytest.raises(DataError, match=r"DataConfig\(protocol='nielsen'\) needs more than 50000 "
                                        r".* holds 20"):
        split(train, test, "nielsen")
    big = (np.zeros((50_003, 1, 1, 1), np.uint8), np.zeros(50_003, np.int32))
    s = split(big, test, "nielsen")
    assert (len(s.train_y), len(s.val_y)) == (50_000, 3)
    with pytest.raises(DataError, match="data.protocol='x' is not one of nielsen, full, holdout"):
        split(train, test, "x")


def test_validation_note_says_where_validation_comes_from():
    assert "last 10% of train" in validation_note("holdout", own_validation=False)
    assert "validation split" in validation_note("holdout", own_validation=True)
    assert validation_note("full", False) == "val = test"


def test_unknown_name_is_a_one_line_config_error_naming_the_remedy():
    with pytest.raises(ConfigError) as err:
        cj.DataConfig(name="cifar10")
    assert str(err.value).startswith("data.name='cifar10' is not one of mnist, fashion_mnist")
    assert "DataConfig(source='tfds')" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name,shape,classes", [
    ("mnist", (28, 28, 1), 10), ("cifar10", (32, 32, 3), 10), ("cifar100", (32, 32, 3), 100),
    ("stl10", (96, 96, 3), 10),
])  # fmt: skip
def test_the_model_takes_its_input_shape_and_classes_from_the_data(name, shape, classes):
    data = cj.DataConfig(name=name, source="tfds" if name != "mnist" else "auto")
    cfg = cj.Config(data=data)
    assert (cfg.model.input_shape, cfg.model.num_classes) == (shape, classes)
    assert from_mapping(to_dict(cfg)) == cfg


def test_a_tfds_dataset_without_fixed_size_images_is_refused_in_one_line():
    with pytest.raises(DataError) as err:
        cj.Config(data=cj.DataConfig(name="cats_vs_dogs", source="tfds"))
    assert "not an image classification dataset of fixed-size uint8 images" in str(err.value)
    with pytest.raises(DataError, match="data.name='no_such_set' is not a TFDS dataset"):
        cj.Config(data=cj.DataConfig(name="no_such_set", source="tfds"))


def test_a_conv_net_too_big_for_the_data_is_refused():
    last = cj.ConvBlockConfig(4, kernel=5, pool=cj.PoolConfig("none"))
    model = cj.ModelConfig(conv=(cj.ConvBlockConfig(4, kernel=5),) * 2 + (last,))
    cj.Config(model=model, data=cj.DataConfig(name="cifar10", source="tfds"))  # 32: 28 14 10 5 1
    with pytest.raises(ConfigError, match=r"model.conv.2.kernel=5 is larger than its 4x4 input"):
        cj.Config(model=model)


@pytest.fixture
def toy_entry(monkeypatch):
    """A registered dataset with its own loader and validation split: 6x5x2 images, 3 classes."""
    rng = np.random.default_rng(0)

    def part(n):
        return rng.integers(0, 256, (n, 6, 5, 2), dtype=np.uint8), rng.integers(0, 3, n)

    parts = (part(40), part(12), part(8))
    entry = registry.Dataset("toy", (6, 5, 2), 3, {"train": 40, "test": 12, "validation": 8},
                             load=lambda: parts)
    monkeypatch.setitem(registry.DATASETS, "toy", entry)
    return parts


def test_a_registered_dataset_with_its_own_loader_trains(toy_entry):
    (tx, _), (sx, _), (vx, _) = toy_entry
    cfg = cj.Config(model=cj.ModelConfig(conv=(), dense=(cj.DenseConfig(8),)),
                    data=cj.DataConfig(name="toy", protocol="holdout"),
                    train=cj.TrainConfig(epochs=1, batch_size=10, progress=False))
    assert (cfg.model.input_shape, cfg.model.num_classes) == ((6, 5, 2), 3)
    assert source.choose(cfg.data) == "own"
    s = load_splits(cfg.data)
    assert np.array_equal(s.train_x, tx) and np.array_equal(s.val_x, vx)
    assert np.array_equal(s.test_x, sx) and s.train_y.dtype == np.int32
    header = "\n".join(header_lines(cfg, s, "own", [0], "loop"))
    assert "data toy 6x5x2, 3 classes (its entry's loader, protocol holdout: val = the " \
           "dataset's validation split)" in header
    result = cj.fit(cfg, s)
    assert result.per_seed[0]["status"] == "ok"


def test_arrays_of_another_shape_than_the_configs_data_are_refused(toy_entry):
    cfg = cj.Config(train=cj.TrainConfig(epochs=1, progress=False))  # data: MNIST, 28x28x1
    (tx, ty), (sx, sy), (vx, vy) = toy_entry
    with pytest.raises(ConfigError, match="the images are 6x5x2 but data.name='mnist' has "
                                          "28x28x1 images"):
        cj.fit(cfg, cj.Splits(tx, ty, vx, vy, sx, sy))


def test_mnist_finds_its_folder_through_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_JAX_MNIST_DIR", str(tmp_path / "from_env"))
    assert registry.folder(cj.DataConfig()) == str(tmp_path / "from_env")
    assert registry.folder(cj.DataConfig(dir="x")) == "x"  # the configured folder comes first
    monkeypatch.delenv("CNN_JAX_MNIST_DIR")
    assert registry.folder(cj.DataConfig()) == registry.DATASETS["mnist"].default_dir


def mock_examples(shape, classes, n):
    """`n` decoded examples as tfds.testing.mock_data hands them, each image holding its index."""
    return [{"image": np.full(shape, i, np.uint8), "label": i % classes, "id": str(i)}
            for i in range(n)]


@pytest.mark.parametrize("name,shape", [("cifar10", (32, 32, 3)), ("stl10", (96, 96, 3))])
def test_a_tfds_dataset_by_name_through_fit(name, shape, tmp_path):
    import tensorflow_datasets as tfds

    cfg = cj.Config(data=cj.DataConfig(name=name, source="tfds", protocol="holdout",
                                       data_dir=str(tmp_path)),
                    train=cj.TrainConfig(epochs=1, batch_size=8, progress=False))
    asked = []

    def as_data_source(self, split, **kwargs):
        asked.append(split)
        return mock_examples(shape, 10, 30 if split == "train" else 10)

    with tfds.testing.mock_data(as_data_source_fn=as_data_source):
        s = load_splits(cfg.data)
    assert sorted(asked) == ["test", "train"]
    assert s.train_x.shape == (27, *shape) and s.train_x.dtype == np.uint8
    assert s.val_x[:, 0, 0, 0].tolist() == [27, 28, 29]  # the last tenth of train
    result = cj.fit(cfg, s)
    assert result.per_seed[0]["status"] == "ok" and len(result.history) == 1


@pytest.mark.slow  # about 35 to 50 s: two jobs of two seeds, each compiling
def test_cli_trains_and_tables_a_tfds_dataset_by_name(tmp_path):
    """`data=tfds data.name=cifar10` at 32x32x3 through the real entry point, as a sweep over
    two learning rates (2 seeds each) that ends in its table."""
    sweep = tmp_path / "sweep"
    cmd = ["-m", "data=tfds", "data.name=cifar10",
           f"data.data_dir={tmp_path / 'tfds'}", "model=fc30", "optimizer.lr=0.001,0.01",
           "train.seeds=2", "train.epochs=1", "train.batch_size=12", "logger=none",
           "train.compile_cache=null", f"hydra.sweep.dir={sweep}"]
    proc = train_under_mock(*cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data cifar10 32x32x3, 10 classes (TFDS, protocol holdout: val = last 10% of train" \
           in proc.stdout + proc.stderr
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["status"] == "ok"
        assert metrics["params"] == 32 * 32 * 3 * 30 + 30 + 30 * 10 + 10
        config = json.loads((sweep / job / "config.json").read_text())
        assert config["model"]["input_shape"] == [32, 32, 3]
    table = (sweep / "table.md").read_text()
    assert "optimizer.lr=0.001" in table and "optimizer.lr=0.01" in table and "vs best" in table
