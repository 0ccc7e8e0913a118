"""IDX parsing and checks on small generated files: missing, truncated, magic, dims, md5."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from idx_fixtures import make_dataset

from cnn_jax.data import idx
from cnn_jax.data.idx import DataError
from cnn_jax.errors import command_line


@pytest.mark.parametrize("gz", [True, False])
def test_roundtrip_gz_and_raw(tmp_path: Path, gz: bool) -> None:
    made = make_dataset(tmp_path, gz=gz)
    loaded = idx.load_idx_dir(tmp_path, made["md5s"])
    for role, array in made["arrays"].items():
        np.testing.assert_array_equal(loaded[role], array)
        assert loaded[role].dtype == np.uint8


def test_missing_dir_message_is_one_line_with_remedies(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        idx.load_idx_dir(missing)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(missing) in msg
    for name in idx.FILES.values():
        assert name in msg
    # worded for the caller: Python's config classes here, the command line's keys there
    assert "DataConfig(dir=<folder holding them>)" in msg
    assert "DataConfig(source='auto')" in msg and "data.dir=" not in msg
    with command_line(), pytest.raises(DataError) as err:
        idx.load_idx_dir(missing)
    assert "data.dir=<folder holding them>" in str(err.value)
    assert "data.source=auto" in str(err.value)


def test_partly_missing_names_the_missing_file(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing: t10k-labels-idx1-ubyte\)"):
        idx.find_files(tmp_path)


def test_truncated_raw_file(tmp_path: Path) -> None:
    made = make_dataset(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: truncated") as err:
        idx.load_idx_dir(tmp_path, made["md5s"])
    assert "\n" not in str(err.value)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        idx.load_idx_dir(tmp_path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="x-idx1-ubyte: truncated"):
        idx.read_idx(path, idx.LABELS_MAGIC)


def test_wrong_magic(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    # a label file where an image file belongs
    labels = gzip.decompress((tmp_path / "train-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(labels))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: wrong magic number"):
        idx.load_idx_dir(tmp_path)


def test_wrong_dims(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    idx.write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 27, 28), np.uint8))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: wrong dims \(4, 27, 28\)"):
        idx.load_idx_dir(tmp_path, image_hw=(28, 28))
    assert idx.load_idx_dir(tmp_path)["test_images"].shape == (4, 27, 28)  # no shape asked


def test_label_count_mismatch(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    idx.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: wrong dims: 3 labels for 4"):
        idx.load_idx_dir(tmp_path)


def test_trailing_bytes(tmp_path: Path) -> None:
    path = idx.write_idx(tmp_path / "l-idx1-ubyte", np.zeros(3, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="1 trailing bytes"):
        idx.read_idx(path, idx.LABELS_MAGIC)


def test_md5_mismatch_names_file_and_digests(tmp_path: Path) -> None:
    made = make_dataset(tmp_path)
    table = dict(made["md5s"], train_labels="0" * 32)
    with pytest.raises(DataError) as err:
        idx.load_idx_dir(tmp_path, table)
    msg = str(err.value)
    assert "train-labels-idx1-ubyte.gz: md5 mismatch" in msg
    assert made["md5s"]["train_labels"] in msg and "0" * 32 in msg and "\n" not in msg


def test_md5_is_of_content_not_of_gzip_bytes(tmp_path: Path) -> None:
    made = make_dataset(tmp_path / "a", gz=True)
    make_dataset(tmp_path / "b", gz=False)
    # same content, different container: the same pinned table accepts both
    idx.load_idx_dir(tmp_path / "b", made["md5s"])


def test_pinned_tables_cover_both_datasets() -> None:
    for name in ("mnist", "fashion_mnist"):
        assert set(idx.MD5[name]) == set(idx.FILES)
        assert all(len(v) == 32 for v in idx.MD5[name].values())
