"""TFDS builders `mnist_idx`, `fashion_mnist_idx`: IDX files -> ArrayRecord, no TensorFlow."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.decode import DeserializeMethod
from tensorflow_datasets.proto import tf_example_pb2

from cnn_jax.data import idx
from cnn_jax.data.pipeline import NIELSEN_TRAIN, Splits, check_nielsen_size
from cnn_jax.errors import first_line

if TYPE_CHECKING:
    from cnn_jax.config import DataConfig

# Official locations (TFDS's mirrors); the size and sha256 of each .gz file as served there are
# registered in checksums.tsv beside this file (TFDS reads it: `url_infos`) and checked on download.
_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # fmt: skip


def official_urls(base: str) -> dict[str, str]:
    """URL of each of the four .gz files under `base`."""
    return {role: f"{base}{name}.gz" for role, name in idx.FILES.items()}


def _manual_dir_of(dl_manager: Any) -> str:
    return str(getattr(dl_manager, "_manual_dir", None) or "<unset>")


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why `url`'s host cannot be reached (one line), or None when a TCP connection opens.

    Checked before downloading, so an offline machine fails at once rather than after TFDS's
    minutes of retries.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        return f"cannot reach {parts.hostname}: {err.strerror or err}"
    return None


class DownloadFailed(idx.DataError):
    """No IDX files in the manual dir and the download failed; `reason` says why, in one line."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def download_failed(builder_name: str, manual_dir: str, reason: str) -> DownloadFailed:
    """The one-line error of a builder that found no files and could not download them."""
    return DownloadFailed(
        f"{builder_name}: no IDX files in manual dir {manual_dir} and the download failed "
        f"({reason}); put the four files there (data.manual_dir=...) or retry with internet",
        reason,
    )


@contextlib.contextmanager
def _quiet_absl():
    """Hide TFDS's absl warnings about a not-yet-built dataset folder (not actionable)."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def manual_files(root: str | os.PathLike, builder_name: str) -> dict[str, Path] | None:
    """The four IDX files in `root/<builder_name>/` or else `root`; None when neither has them."""
    for folder in (Path(root) / builder_name, Path(root)):
        try:
            return idx.find_files(folder)
        except idx.DataError:
            continue
    return None


class _IdxBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared logic: four IDX files from the manual dir, else downloaded; content md5 verified."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "IDX files parsed by cnn_jax.data.idx, uint8 images, ArrayRecord."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; .gz or raw) in the manual dir, "
        "or in <manual_dir>/<builder name>/; otherwise they are downloaded."
    )
    DATASET = ""  # key into idx.MD5
    BASE_URL = ""
    LABEL_NAMES: tuple[str, ...] | None = None
    CONTENT_MD5: dict[str, str] | None = None  # None = idx.MD5[DATASET]; tests override

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        names = list(self.LABEL_NAMES) if self.LABEL_NAMES else None
        label = tfds.features.ClassLabel(names=names, num_classes=None if names else 10)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(
                        shape=(28, 28, 1), dtype=np.uint8, encoding=tfds.features.Encoding.BYTES
                    ),
                    "label": label,
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # records stay in file order: train[:50000] is Nielsen's
            homepage=self.BASE_URL,
        )

    def _manual_paths(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Path] | None:
        try:
            root = dl_manager.manual_dir
        except (AssertionError, ValueError):  # TFDS raises these for an unset, absent or empty dir
            return None
        return manual_files(root, self.name)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        paths = self._manual_paths(dl_manager)
        if paths is None:
            try:
                paths = dl_manager.download(official_urls(self.BASE_URL))
            except Exception as err:  # offline, refused, or a registered checksum did not match
                raise download_failed(self.name, _manual_dir_of(dl_manager),
                                      f"{type(err).__name__}: {first_line(err)}") from err
        md5s = self.CONTENT_MD5 if self.CONTENT_MD5 is not None else idx.MD5[self.DATASET]
        arrays = idx.load_idx_paths(paths, md5s)
        return {
            split: self._generate_examples(arrays[f"{split}_images"], arrays[f"{split}_labels"])
            for split in ("train", "test")
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        for i in range(len(images)):
            yield i, {"image": images[i][..., None], "label": int(labels[i])}


class MnistIdx(_IdxBuilder):
    """MNIST from the four IDX files (manual dir or official mirror), no TensorFlow needed."""

    DATASET = "mnist"
    BASE_URL = _MNIST_URL


class FashionMnistIdx(_IdxBuilder):
    """Fashion-MNIST from the four IDX files (manual dir or official mirror), no TensorFlow."""

    DATASET = "fashion_mnist"
    BASE_URL = _FASHION_URL
    LABEL_NAMES = FASHION_NAMES


BUILDERS = {"mnist": MnistIdx, "fashion_mnist": FashionMnistIdx}


def prepared_builder(
    name: str,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
) -> _IdxBuilder:
    """The builder for dataset `name`, prepared (built into data_dir once, then reused)."""
    data_dir = None if data_dir is None else os.fspath(Path(data_dir).expanduser().resolve())
    with _quiet_absl():
        builder = BUILDERS[name](data_dir=data_dir)
        prepared = builder.is_prepared()
    if prepared:
        return builder
    manual = Path(manual_dir) if manual_dir is not None else (
        Path(builder.data_dir_root) / "downloads" / "manual")  # TFDS's default manual dir
    if manual_files(manual, builder.name) is None:
        reason = unreachable(builder.BASE_URL)  # offline: fail now, not after TFDS's retries
        if reason is not None:
            raise download_failed(builder.name, str(manual.resolve()), reason)
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else os.fspath(Path(manual_dir).resolve()),
        try_download_gcs=False,  # never hosted there; no network probe
    )
    try:
        builder.download_and_prepare(download_config=config)
    except OSError:
        # A concurrent run (e.g. a parallel sweep) renamed its build into place first.
        with _quiet_absl():
            builder = BUILDERS[name](data_dir=data_dir)
        if not builder.is_prepared():
            raise
    return builder


def _parse_fast(records: list[bytes]) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse serialized Examples straight from their protos (3-5x faster than TFDS's decoder)."""
    parse = tf_example_pb2.Example.FromString
    images, labels = [], []
    for record in records:
        if not isinstance(record, bytes):  # e.g. tfds.testing.mock_data hands decoded examples
            return None
        feature = parse(record).features.feature
        image, label = feature["image"].bytes_list.value, feature["label"].int64_list.value
        if len(image) != 1 or len(image[0]) != 784 or len(label) != 1:
            return None
        images.append(image[0])
        labels.append(label[0])
    x = np.frombuffer(b"".join(images), dtype=np.uint8).reshape(-1, 28, 28, 1)
    return x, np.asarray(labels, dtype=np.int32)


def _all_records(source: Any) -> list[Any]:
    n = len(source)
    if hasattr(source, "__getitems__"):  # ArrayRecord: one batched, parallel read
        return list(source.__getitems__(range(n)))
    return [source[i] for i in range(n)]  # any Sequence (e.g. a list from a test double)


def read_split(builder: tfds.core.DatasetBuilder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split (TFDS slice syntax allowed) as numpy (images (N,28,28,1) uint8, labels int32)."""
    raw = builder.as_data_source(split=split, deserialize_method=DeserializeMethod.RAW_BYTES)
    fast = _parse_fast(_all_records(raw))
    if fast is not None:
        return fast
    examples = _all_records(builder.as_data_source(split=split))  # decoded by TFDS
    if not examples:
        return np.zeros((0, 28, 28, 1), np.uint8), np.zeros((0,), np.int32)
    images = np.stack([np.asarray(e["image"]) for e in examples]).reshape(-1, 28, 28, 1)
    return images.astype(np.uint8), np.asarray([e["label"] for e in examples], dtype=np.int32)


def split_names(protocol: str, train_limit: int | None = None) -> tuple[str, str, str]:
    """TFDS split strings (train, val, test) of a protocol; nielsen = train[:50000] / [50000:]."""
    if protocol == "nielsen":
        n = NIELSEN_TRAIN if train_limit is None else min(train_limit, NIELSEN_TRAIN)
        return f"train[:{n}]", f"train[{NIELSEN_TRAIN}:]", "test"
    if protocol == "full":
        return ("train" if train_limit is None else f"train[:{train_limit}]"), "test", "test"
    raise idx.DataError(f"data.protocol={protocol!r} is not one of nielsen, full")


def _manual_dir(cfg: DataConfig, builder_name: str) -> str | None:
    """cfg.manual_dir (which must hold the files), else data.dir when it does, else TFDS's."""
    if cfg.manual_dir is not None:
        if manual_files(cfg.manual_dir, builder_name) is None:
            root = Path(cfg.manual_dir).expanduser().resolve()
            raise idx.DataError(
                f"data.manual_dir={cfg.manual_dir}: no IDX files in {root} or {root}/"
                f"{builder_name} (expected {', '.join(idx.FILES.values())}, each .gz or raw); "
                "put them there, or drop data.manual_dir to download them"
            )
        return cfg.manual_dir
    try:
        idx.find_files(cfg.dir)
    except idx.DataError:
        return None  # TFDS default: <data_dir>/downloads/manual/
    return cfg.dir


def load_tfds_splits(cfg: DataConfig) -> Splits:
    """Splits of `cfg.name` read through the TFDS builder (prepared first if needed)."""
    manual_dir = _manual_dir(cfg, BUILDERS[cfg.name].name)
    builder = prepared_builder(cfg.name, cfg.data_dir, manual_dir)
    if cfg.protocol == "nielsen" and "train" in builder.info.splits:  # (no splits under mock_data)
        check_nielsen_size(builder.info.splits["train"].num_examples)
    names = split_names(cfg.protocol, cfg.train_limit)
    parts = {}
    for split in dict.fromkeys(names):
        parts[split] = read_split(builder, split)
    (tx, ty), (vx, vy), (sx, sy) = (parts[s] for s in names)
    return Splits(tx, ty, vx, vy, sx, sy)
