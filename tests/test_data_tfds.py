"""TFDS builders without TensorFlow: prepare from local files, failures, mocked downloads."""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from idx_fixtures import FASHION_DIR, MNIST_DIR, make_dataset
from tensorflow_datasets.core.download import checksums, downloader

from cnn_jax.config import DataConfig
from cnn_jax.data import DataError, builders, idx, load_splits


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    made = make_dataset(tmp_path / "manual")
    monkeypatch.setattr(builders.MnistIdx, "CONTENT_MD5", made["md5s"])
    return made


def _nothing_complete(data_dir: Path) -> None:
    assert not builders.MnistIdx(data_dir=str(data_dir)).is_prepared()
    version_dir = data_dir / "mnist_idx" / "1.0.0"
    assert not version_dir.exists(), sorted(p.name for p in version_dir.parent.iterdir())


def _assert_matches(builder, made: dict) -> None:
    x, y = builders.read_split(builder, "train")
    np.testing.assert_array_equal(x[..., 0], made["arrays"]["train_images"])
    np.testing.assert_array_equal(y, made["arrays"]["train_labels"])
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28, 1) and y.dtype == np.int32
    x, y = builders.read_split(builder, "test")
    np.testing.assert_array_equal(y, made["arrays"]["test_labels"])


def test_prepare_from_manual_dir_keeps_file_order(tmp_path: Path, tiny: dict) -> None:
    builder = builders.prepared_builder("mnist", tmp_path / "tfds", tmp_path / "manual")
    assert builder.info.file_format.value == "array_record"
    _assert_matches(builder, tiny)
    x, y = builders.read_split(builder, "train[5:]")
    np.testing.assert_array_equal(y, tiny["arrays"]["train_labels"][5:])
    assert "tensorflow" not in sys.modules


def test_manual_subdir_named_after_builder(tmp_path: Path, monkeypatch) -> None:
    made = make_dataset(tmp_path / "manual" / "mnist_idx")
    monkeypatch.setattr(builders.MnistIdx, "CONTENT_MD5", made["md5s"])
    _assert_matches(builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "manual"), made)


def test_load_splits_tfds_source_uses_dir_as_manual_dir(tmp_path: Path, tiny: dict) -> None:
    cfg = DataConfig(
        source="tfds", dir=str(tmp_path / "manual"), data_dir=str(tmp_path / "t"), protocol="full"
    )
    s = load_splits(cfg)
    np.testing.assert_array_equal(s.train_x[..., 0], tiny["arrays"]["train_images"])
    np.testing.assert_array_equal(s.val_y, tiny["arrays"]["test_labels"])
    limited = load_splits(DataConfig(**{**cfg.__dict__, "train_limit": 3, "expand": True}))
    assert limited.train_x.shape == (15, 28, 28, 1)
    with pytest.raises(DataError, match=r"DataConfig\(protocol='nielsen'\) needs more than 50000"):
        load_splits(DataConfig(**{**cfg.__dict__, "protocol": "nielsen"}))


def test_failed_prepare_leaves_nothing_complete(tmp_path: Path, tiny: dict, monkeypatch) -> None:
    def broken(self, images, labels):
        for i in range(3):
            yield i, {"image": images[i][..., None], "label": int(labels[i])}
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(builders._IdxBuilder, "_generate_examples", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "manual")
    _nothing_complete(tmp_path / "t")
    assert not [p for p in (tmp_path / "t" / "mnist_idx").iterdir() if "incomplete" in p.name]
    _assert_matches(builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "manual"), tiny)


def test_concurrent_prepare_loses_the_race_gracefully(tmp_path: Path, tiny: dict, monkeypatch):
    original = builders._IdxBuilder._generate_examples
    raced = []

    def racing(self, images, labels):
        if not raced:  # another process finishes its build while this one is generating
            raced.append(True)
            builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "manual")
        yield from original(self, images, labels)

    monkeypatch.setattr(builders._IdxBuilder, "_generate_examples", racing)
    builder = builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "manual")
    assert raced
    _assert_matches(builder, tiny)


def test_md5_mismatch_in_manual_dir_fails_cleanly(tmp_path: Path, tiny: dict, monkeypatch) -> None:
    monkeypatch.setattr(builders.MnistIdx, "CONTENT_MD5", dict(tiny["md5s"], test_images="0" * 32))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: md5 mismatch"):
        builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "manual")
    _nothing_complete(tmp_path / "t")


def _serve(monkeypatch, files: dict[str, bytes] | Exception) -> list[str]:
    """Patch TFDS's HTTP layer so each official URL answers with local bytes (or raises)."""
    served: list[str] = []

    @contextlib.contextmanager
    def fake_open_url(url: str, **kwargs):
        if isinstance(files, Exception):
            raise files
        served.append(url)
        yield types.SimpleNamespace(url=url, headers={}), iter([files[url]])

    monkeypatch.setattr(downloader, "_open_url", fake_open_url)
    monkeypatch.setattr(builders, "unreachable", lambda url, timeout=5.0: None)  # "online"
    return served


def _gz_files(folder: Path) -> dict[str, bytes]:
    urls = builders.official_urls(builders.MnistIdx.BASE_URL)
    return {urls[role]: (folder / f"{name}.gz").read_bytes() for role, name in idx.FILES.items()}


def _serve_with_their_checksums(tmp_path: Path, monkeypatch) -> tuple[dict, dict]:
    """(files, served): the tiny .gz files served at the official URLs, their checksums
    registered as the builder's, so the download path accepts them."""
    files = _gz_files(tmp_path / "manual")
    infos = {}
    for url, data in files.items():
        (tmp_path / "x.gz").write_bytes(data)
        infos[url] = checksums.compute_url_info(tmp_path / "x.gz")
    monkeypatch.setattr(builders.MnistIdx, "url_infos", infos)
    return files, _serve(monkeypatch, files)


def test_download_path_with_registered_checksums(tmp_path: Path, tiny: dict, monkeypatch) -> None:
    files, served = _serve_with_their_checksums(tmp_path, monkeypatch)
    builder = builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "empty_manual")
    assert sorted(served) == sorted(files)
    _assert_matches(builder, tiny)
    assert len(list((tmp_path / "t" / "downloads").rglob("*idx*-ubyte*.gz"))) == 4


def test_download_with_wrong_checksum_is_rejected(tmp_path: Path, tiny: dict, monkeypatch) -> None:
    # registered checksums are the official ones; the generated files cannot match them
    _serve(monkeypatch, _gz_files(tmp_path / "manual"))
    with pytest.raises(DataError, match="download failed .*NonMatchingChecksumError"):
        builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "empty_manual")
    _nothing_complete(tmp_path / "t")


def test_offline_without_files_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    _serve(monkeypatch, ConnectionError("Name or service not known"))
    with pytest.raises(DataError) as err:
        builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "empty_manual")
    msg = str(err.value)
    assert "\n" not in msg and "manual" in msg and "ConnectionError" in msg
    _nothing_complete(tmp_path / "t")


def test_load_splits_under_tfds_mock_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(builders, "unreachable", lambda url, timeout=5.0: None)  # "online"
    rng = np.random.default_rng(0)
    fake = [
        {"image": rng.integers(0, 256, (28, 28, 1), dtype=np.uint8), "label": i % 10}
        for i in range(7)
    ]
    splits_asked = []

    def as_data_source(self, split, **kwargs):
        splits_asked.append(split)
        return fake

    cfg = DataConfig(source="tfds", dir=str(tmp_path / "none"), data_dir=str(tmp_path / "t"),
                     protocol="full")
    with tfds.testing.mock_data(as_data_source_fn=as_data_source):
        s = load_splits(cfg)
    assert {"train", "test"} <= set(splits_asked)
    assert s.train_x.shape == (7, 28, 28, 1) and s.train_x.dtype == np.uint8
    np.testing.assert_array_equal(s.test_x[3], fake[3]["image"])
    np.testing.assert_array_equal(s.test_y, np.arange(7) % 10)
    assert s.test_y.dtype == np.int32


def _same_as_idx(name: str, folder: Path, tmp_path: Path) -> None:
    via_tfds = load_splits(
        DataConfig(name=name, source="tfds", dir=str(folder), data_dir=str(tmp_path / "t"))
    )
    via_idx = load_splits(DataConfig(name=name, dir=str(folder)), cache_dir=tmp_path / "c")
    for a, b in zip(via_tfds, via_idx, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST IDX files not in {MNIST_DIR}")
def test_real_mnist_through_tfds_equals_idx(tmp_path: Path) -> None:
    _same_as_idx("mnist", MNIST_DIR, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"Fashion-MNIST not in {FASHION_DIR}")
def test_real_fashion_mnist_through_tfds_equals_idx(tmp_path: Path) -> None:
    _same_as_idx("fashion_mnist", FASHION_DIR, tmp_path)


def test_offline_fails_before_downloading_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    served = _serve(monkeypatch, {})
    monkeypatch.setattr(builders, "unreachable", lambda url, timeout=5.0: "cannot reach x: down")
    with pytest.raises(builders.DownloadFailed, match=r"\(cannot reach x: down\)") as err:
        builders.prepared_builder("mnist", tmp_path / "t", tmp_path / "empty_manual")
    assert err.value.reason == "cannot reach x: down" and not served
    assert not (tmp_path / "t").exists()


def test_unreachable_names_the_host(tmp_path: Path) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert builders.unreachable(f"http://127.0.0.1:{port}/mnist/") is None
    assert builders.unreachable(f"http://127.0.0.1:{port}/mnist/").startswith(
        "cannot reach 127.0.0.1: ")


def _auto(folder: Path, tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(dir=str(folder), data_dir=str(tmp_path / "t"), protocol="full", **kw)


def test_auto_downloads_when_data_dir_lacks_the_files(tmp_path, tiny, monkeypatch) -> None:
    files, served = _serve_with_their_checksums(tmp_path, monkeypatch)
    s = load_splits(_auto(tmp_path / "empty", tmp_path))
    assert sorted(served) == sorted(files)
    np.testing.assert_array_equal(s.train_x[..., 0], tiny["arrays"]["train_images"])
    np.testing.assert_array_equal(s.test_y, tiny["arrays"]["test_labels"])


def test_auto_offline_without_files_is_one_line_with_both_remedies(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(builders, "unreachable", lambda url, timeout=5.0: "cannot reach h: down")
    with pytest.raises(DataError) as err:
        load_splits(_auto(tmp_path / "empty", tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and not isinstance(err.value, builders.DownloadFailed)
    assert f"not found in {tmp_path / 'empty'} " in msg and "(cannot reach h: down)" in msg
    assert all(name in msg for name in idx.FILES.values())
    assert "set DataConfig(dir=<folder holding them>)" in msg and "internet" in msg
    with pytest.raises(builders.DownloadFailed):  # an explicit tfds source keeps TFDS's wording
        load_splits(_auto(tmp_path / "empty", tmp_path, source="tfds"))


def test_tfds_manual_dir_without_files_is_an_error(tmp_path, monkeypatch) -> None:
    served = _serve(monkeypatch, {})
    with pytest.raises(DataError, match=r"^DataConfig\(manual_dir='\S*nowhere'\): no IDX files "
                                        r"in .* or leave DataConfig.manual_dir unset to "):
        load_splits(_auto(tmp_path / "empty", tmp_path, manual_dir=str(tmp_path / "nowhere")))
    assert not served
