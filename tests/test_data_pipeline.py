"""Splits, expansion and the .npz cache; real MNIST / Fashion-MNIST when their files are here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from idx_fixtures import FASHION_DIR, MNIST_DIR, make_dataset, use_md5s

from cnn_jax.config import DataConfig
from cnn_jax.data import DataError, Splits, expand_shifts, idx, load_splits, pipeline, source


def _have(folder: Path) -> bool:
    try:
        idx.find_files(folder)
    except DataError:
        return False
    return True


needs_mnist = pytest.mark.skipif(not _have(MNIST_DIR), reason=f"MNIST IDX files not in {MNIST_DIR}")
needs_fashion = pytest.mark.skipif(
    not _have(FASHION_DIR),
    reason=f"Fashion-MNIST not in {FASHION_DIR} (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("npz_cache")


def test_expand_shifts_on_hand_made_image() -> None:
    x = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3)  # rows 1 2 3 / 4 5 6 / 7 8 9
    ex, ey = expand_shifts(x, np.array([7]))
    assert ex.shape == (5, 3, 3) and ex.dtype == np.uint8
    np.testing.assert_array_equal(ey, [7] * 5)
    np.testing.assert_array_equal(ex[0], x[0])
    np.testing.assert_array_equal(ex[1], [[4, 5, 6], [7, 8, 9], [0, 0, 0]])  # up
    np.testing.assert_array_equal(ex[2], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])  # down
    np.testing.assert_array_equal(ex[3], [[2, 3, 0], [5, 6, 0], [8, 9, 0]])  # left
    np.testing.assert_array_equal(ex[4], [[0, 1, 2], [0, 4, 5], [0, 7, 8]])  # right


def test_expand_shifts_nhwc_size_order_and_determinism() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    y = np.arange(6, dtype=np.int32)
    ex, ey = expand_shifts(x, y)
    assert ex.shape == (30, 28, 28, 1) and ey.shape == (30,)
    np.testing.assert_array_equal(ex[0::5], x)
    np.testing.assert_array_equal(ey, np.repeat(y, 5))
    np.testing.assert_array_equal(ex[5 * 2 + 1, :-1], x[2, 1:])  # image 2 shifted up
    assert not ex[5 * 2 + 4, :, 0].any()  # right shift: vacated first column is zero
    ex2, ey2 = expand_shifts(x, y)
    np.testing.assert_array_equal(ex, ex2)
    np.testing.assert_array_equal(ey, ey2)


def test_generated_full_protocol_limit_and_expand(tmp_path: Path, monkeypatch) -> None:
    made = make_dataset(tmp_path / "d")
    use_md5s(monkeypatch, "mnist", made["md5s"])
    cfg = DataConfig(dir=str(tmp_path / "d"), protocol="full", train_limit=5, expand=True)
    s = load_splits(cfg, cache_dir=tmp_path / "c")
    assert isinstance(s, Splits)
    assert s.train_x.shape == (25, 28, 28, 1) and s.train_y.dtype == np.int32
    np.testing.assert_array_equal(s.train_x[0::5, ..., 0], made["arrays"]["train_images"][:5])
    np.testing.assert_array_equal(s.val_x[..., 0], made["arrays"]["test_images"])
    np.testing.assert_array_equal(s.test_y, made["arrays"]["test_labels"])
    warm = load_splits(cfg, cache_dir=tmp_path / "c")
    assert all(a.flags.writeable for a in (*s, *warm))  # cold and warm alike


def test_nielsen_protocol_needs_more_than_50k_images(tmp_path: Path, monkeypatch) -> None:
    made = make_dataset(tmp_path / "d")
    use_md5s(monkeypatch, "mnist", made["md5s"])
    with pytest.raises(DataError, match=r"DataConfig\(protocol='nielsen'\) needs more than 50000 "
                                        r".* holds 12"):
        load_splits(DataConfig(dir=str(tmp_path / "d")), cache_dir=tmp_path / "c")


def test_relative_dir_resolves_against_cwd(tmp_path: Path, monkeypatch) -> None:
    made = make_dataset(tmp_path / "rel")
    use_md5s(monkeypatch, "mnist", made["md5s"])
    monkeypatch.chdir(tmp_path)
    s = load_splits(DataConfig(dir="rel", protocol="full"), cache_dir=tmp_path / "c")
    assert len(s.train_x) == 12


def test_cache_is_reused_rebuilt_and_invalidated(tmp_path: Path, monkeypatch) -> None:
    made = make_dataset(tmp_path / "d")
    cache = tmp_path / "c"
    first = pipeline.load_idx_arrays("mnist", tmp_path / "d", made["md5s"], cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temp files left behind

    def fail(*args, **kwargs):
        raise AssertionError("parsed again although the cache is warm")

    with monkeypatch.context() as m:
        m.setattr(idx, "load_idx_dir", fail)
        warm = pipeline.load_idx_arrays("mnist", tmp_path / "d", made["md5s"], cache)
    for role in idx.FILES:
        np.testing.assert_array_equal(warm[role], first[role])
    files[0].write_bytes(b"garbage")  # a damaged cache is rebuilt, not trusted
    again = pipeline.load_idx_arrays("mnist", tmp_path / "d", made["md5s"], cache)
    np.testing.assert_array_equal(again["train_images"], first["train_images"])
    # changed source file -> new key -> parsed (and md5-checked) again
    path = tmp_path / "d" / "train-labels-idx1-ubyte.gz"
    os.utime(path, ns=(0, 0))
    with pytest.raises(DataError, match="md5 mismatch"):
        pipeline.load_idx_arrays(
            "mnist", tmp_path / "d", dict(made["md5s"], train_labels="x"), cache
        )


def test_missing_dir_through_load_splits(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found in"):
        load_splits(DataConfig(dir=str(tmp_path / "none"), source="idx"), cache_dir=tmp_path / "c")


def test_auto_reads_the_idx_files_when_present(tmp_path: Path, monkeypatch) -> None:
    made = make_dataset(tmp_path / "d", n_train=6)
    use_md5s(monkeypatch, "mnist", made["md5s"])
    monkeypatch.setattr(source, "load_tfds", lambda cfg, auto: pytest.fail("TFDS used"))
    cfg = DataConfig(dir=str(tmp_path / "d"), protocol="full")
    assert cfg.source == "auto" and source.choose(cfg) == "idx"
    s = load_splits(cfg, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(s.train_x[..., 0], made["arrays"]["train_images"])
    assert source.choose(DataConfig(dir=str(tmp_path / "none"))) == "tfds"


@pytest.mark.parametrize("src", ["auto", "idx"])
@pytest.mark.parametrize("key", ["manual_dir", "data_dir"])
def test_tfds_options_with_idx_files_are_an_error(tmp_path: Path, src: str, key: str) -> None:
    make_dataset(tmp_path / "d")
    cfg = DataConfig(dir=str(tmp_path / "d"), source=src, **{key: "/nonexistent/dir"})
    with pytest.raises(DataError) as err:
        load_splits(cfg, cache_dir=tmp_path / "c")
    msg = str(err.value)
    assert msg.startswith(f"DataConfig({key}='/nonexistent/dir') is a TFDS option")
    assert str(tmp_path / "d") in msg and "\n" not in msg
    assert msg.endswith(f"leave DataConfig.{key} unset, or set DataConfig(source='tfds')")


@needs_mnist
def test_real_mnist_nielsen_split(cache: Path) -> None:
    s = load_splits(DataConfig(dir=str(MNIST_DIR)), cache_dir=cache)
    sizes = [len(a) for a in s]
    assert sizes == [50_000, 50_000, 10_000, 10_000, 10_000, 10_000]
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y), (s.test_x, s.test_y)):
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28, 1)
        assert y.dtype == np.int32 and y.min() == 0 and y.max() == 9
        assert x.max() == 255 and x.min() == 0
    np.testing.assert_array_equal(s.train_y[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(s.test_y[:5], [7, 2, 1, 0, 4])
    full = load_splits(DataConfig(dir=str(MNIST_DIR), protocol="full"), cache_dir=cache)
    assert len(full.train_x) == 60_000
    np.testing.assert_array_equal(full.train_x[50_000:], s.val_x)
    np.testing.assert_array_equal(full.val_y, full.test_y)


@needs_mnist
def test_real_mnist_limit_then_expand(cache: Path) -> None:
    s = load_splits(DataConfig(dir=str(MNIST_DIR), train_limit=100, expand=True), cache_dir=cache)
    assert s.train_x.shape == (500, 28, 28, 1) and len(s.val_x) == 10_000


@needs_fashion
def test_real_fashion_mnist(cache: Path) -> None:
    cfg = DataConfig(name="fashion_mnist", dir=str(FASHION_DIR))
    s = load_splits(cfg, cache_dir=cache)
    assert [len(a) for a in s] == [50_000, 50_000, 10_000, 10_000, 10_000, 10_000]
    assert s.train_x.dtype == np.uint8 and s.test_y.max() == 9
    np.testing.assert_array_equal(np.bincount(s.test_y), [1000] * 10)


@needs_mnist
def test_mnist_files_are_not_fashion(cache: Path) -> None:
    with pytest.raises(DataError, match="md5 mismatch"):
        load_splits(DataConfig(name="fashion_mnist", dir=str(MNIST_DIR)), cache_dir=cache)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_conf_data_node_has_exactly_the_dataconfig_fields(name: str, monkeypatch) -> None:
    import dataclasses

    from omegaconf import OmegaConf

    from cnn_jax.data import registry
    from experiments.compose import compose_dictconfig

    monkeypatch.delenv("CNN_JAX_MNIST_DIR", raising=False)
    monkeypatch.delenv("CNN_JAX_FASHION_MNIST_DIR", raising=False)
    data = OmegaConf.to_container(compose_dictconfig(f"data={name}").data, resolve=True)
    assert sorted(data) == sorted(f.name for f in dataclasses.fields(DataConfig))
    assert DataConfig(**data).name == name
    assert data["dir"] == registry.DATASETS[name].default_dir
    assert (name == "mnist") == (data["dir"] == "../shared/data/mnist")


def test_val_and_test_limits_keep_the_first_images_of_their_split():
    import numpy as np

    from cnn_jax.data.pipeline import finish
    from cnn_jax.data.splits import Splits

    imgs = lambda n, k: np.full((n, 4, 4, 1), k, np.uint8) + np.arange(n)[:, None, None, None]
    splits = Splits(imgs(10, 0), np.arange(10), imgs(6, 50), np.arange(6), imgs(8, 100),
                    np.arange(8))
    out = finish(splits, val_limit=4, test_limit=3)
    assert len(out.train_y) == 10 and out.val_y.tolist() == [0, 1, 2, 3]
    assert out.test_y.tolist() == [0, 1, 2] and out.test_x[2, 0, 0, 0] == 102
    assert len(finish(splits).val_y) == 6  # no limit: every image


def test_a_bad_limit_is_a_one_line_config_error():
    import pytest

    from cnn_jax.config import ConfigError, DataConfig

    with pytest.raises(ConfigError, match=r"data.val_limit=0 must be an integer >= 1"):
        DataConfig(val_limit=0)
