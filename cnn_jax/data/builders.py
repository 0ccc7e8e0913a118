"""TFDS: the builders `mnist_idx`, `fashion_mnist_idx` (IDX files -> ArrayRecord, no TensorFlow),
and any TFDS image classification dataset by name, read into numpy splits."""

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

from cnn_jax.data import idx, registry
from cnn_jax.data.splits import Pair, Splits, split
from cnn_jax.errors import field_name, first_line, setting

if TYPE_CHECKING:
    from cnn_jax.config import DataConfig

# Official locations (TFDS's mirrors); the size and sha256 of each .gz file as served there are
# registered in checksums.tsv beside this file (TFDS reads it: `url_infos`) and checked on download.
_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


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
        f"({reason}); put the four files there ({setting('data.manual_dir', '<folder>')}) or "
        "retry with internet",
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
    DATASET = ""  # its entry in registry.DATASETS: shape, classes, label names, content md5s
    BASE_URL = ""
    CONTENT_MD5: dict[str, str] | None = None  # None = the entry's idx_md5; tests override

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    @property
    def entry(self) -> registry.Dataset:
        return registry.DATASETS[self.DATASET]

    def _info(self) -> tfds.core.DatasetInfo:
        entry = self.entry
        names = list(entry.label_names) if entry.label_names else None
        label = tfds.features.ClassLabel(names=names,
                                         num_classes=None if names else entry.num_classes)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=entry.image_shape, dtype=np.uint8,
                                                  encoding=tfds.features.Encoding.BYTES),
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
        entry = self.entry
        md5s = self.CONTENT_MD5 if self.CONTENT_MD5 is not None else entry.idx_md5
        arrays = idx.load_idx_paths(paths, md5s, entry.image_shape[:2], entry.num_classes)
        return {
            split: self._generate_examples(arrays[f"{split}_images"], arrays[f"{split}_labels"])
            for split in ("train", "test")
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        for i in range(len(images)):
            yield i, {"image": images[i].reshape(self.entry.image_shape), "label": int(labels[i])}


class MnistIdx(_IdxBuilder):
    """MNIST from the four IDX files (manual dir or official mirror), no TensorFlow needed."""

    DATASET = "mnist"
    BASE_URL = _MNIST_URL


class FashionMnistIdx(_IdxBuilder):
    """Fashion-MNIST from the four IDX files (manual dir or official mirror), no TensorFlow."""

    DATASET = "fashion_mnist"
    BASE_URL = _FASHION_URL


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


def _parse_fast(records: list[bytes], shape: tuple[int, ...],
                keys: tuple[str, str]) -> Pair | None:
    """Parse serialized Examples straight from their protos (3-5x faster than TFDS's decoder);
    None unless every image is raw uint8 bytes of `shape`."""
    parse = tf_example_pb2.Example.FromString
    size, (image_key, label_key) = int(np.prod(shape)), keys
    images, labels = [], []
    for record in records:
        if not isinstance(record, bytes):  # e.g. tfds.testing.mock_data hands decoded examples
            return None
        feature = parse(record).features.feature
        image, label = feature[image_key].bytes_list.value, feature[label_key].int64_list.value
        if len(image) != 1 or len(image[0]) != size or len(label) != 1:
            return None
        images.append(image[0])
        labels.append(label[0])
    x = np.frombuffer(b"".join(images), dtype=np.uint8).reshape(-1, *shape)
    return x, np.asarray(labels, dtype=np.int32)


def _all_records(source: Any) -> list[Any]:
    n = len(source)
    if hasattr(source, "__getitems__"):  # ArrayRecord: one batched, parallel read
        try:
            return list(source.__getitems__(range(n)))
        except TypeError:  # tfds.testing.mock_data's source takes no batched read
            pass
    return [source[i] for i in range(n)]  # any Sequence (e.g. a list from a test double)


def read_split(builder: tfds.core.DatasetBuilder, split_name: str,
               shape: tuple[int, ...] | None = None, keys: tuple[str, str] = ("image", "label"),
               ) -> Pair:
    """A split (TFDS slice syntax allowed) as numpy (images (N, *shape) uint8, labels int32);
    `shape` defaults to the builder's image feature's."""
    shape = tuple(shape or builder.info.features[keys[0]].shape)
    if isinstance(builder, _IdxBuilder):  # raw uint8 bytes: parsed without TFDS's decoder
        raw = builder.as_data_source(split=split_name,
                                     deserialize_method=DeserializeMethod.RAW_BYTES)
        fast = _parse_fast(_all_records(raw), shape, keys)
        if fast is not None:
            return fast
    examples = _all_records(builder.as_data_source(split=split_name))  # decoded by TFDS
    if not examples:
        return np.zeros((0, *shape), np.uint8), np.zeros((0,), np.int32)
    images = np.stack([np.asarray(e[keys[0]]) for e in examples]).reshape(-1, *shape)
    return images.astype(np.uint8), np.asarray([e[keys[1]] for e in examples], dtype=np.int32)


def _manual_dir(cfg: DataConfig, builder_name: str) -> str | None:
    """cfg.manual_dir (which must hold the files), else the IDX folder when it does, else TFDS's."""
    if cfg.manual_dir is not None:
        if manual_files(cfg.manual_dir, builder_name) is None:
            root = Path(cfg.manual_dir).expanduser().resolve()
            raise idx.DataError(
                f"{setting('data.manual_dir', cfg.manual_dir)}: no IDX files in {root} or "
                f"{root}/{builder_name} (expected {', '.join(idx.FILES.values())}, each .gz or "
                f"raw); put them there, or leave {field_name('data.manual_dir')} unset to "
                "download them"
            )
        return cfg.manual_dir
    here = registry.folder(cfg)
    return here if idx.has_files(here) else None  # None: TFDS's <data_dir>/downloads/manual/


def _keys(builder: tfds.core.DatasetBuilder) -> tuple[str, str]:
    keys = builder.info.supervised_keys
    return (keys[0], keys[1]) if keys and len(keys) == 2 else ("image", "label")


def tfds_dataset(name: str, data_dir: str | os.PathLike | None = None) -> registry.Dataset:
    """The registry entry of TFDS dataset `name`, from its builder's metadata (no download):
    a fixed HxWxC uint8 image feature and a class label, else a one-line DataError."""
    try:
        with _quiet_absl():
            builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
    except Exception as err:  # not registered, or a misspelt name
        raise idx.DataError(f"data.name={name!r} is not a TFDS dataset "
                            f"({type(err).__name__}: {first_line(err)[:200]})") from err
    image_key, label_key = _keys(builder)
    features = {k: builder.info.features[k] for k in builder.info.features.keys()}  # noqa: SIM118
    image, label = features.get(image_key), features.get(label_key)
    shape = tuple(getattr(image, "shape", ()) or ())
    if (len(shape) != 3 or None in shape or np.dtype(image.np_dtype) != np.uint8
            or not isinstance(label, tfds.features.ClassLabel)):
        raise idx.DataError(
            f"data.name={name!r} is not an image classification dataset of fixed-size uint8 "
            f"images: its supervised keys ({image_key!r}, {label_key!r}) hold {image!r} and "
            f"{label!r}; expected an HxWxC uint8 image and a class label"
        )
    return registry.Dataset(
        name, shape, label.num_classes,
        {k: v.num_examples for k, v in builder.info.splits.items()}, tfds_name=name,
        label_names=tuple(label.names),
    )


def prepared_tfds(name: str, data_dir: str | os.PathLike | None = None,
                  manual_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """TFDS dataset `name`'s builder, downloaded and prepared into data_dir once, then reused."""
    data_dir = None if data_dir is None else os.fspath(Path(data_dir).expanduser().resolve())
    with _quiet_absl():
        builder = tfds.builder(name, data_dir=data_dir)
        if builder.is_prepared():
            return builder
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else os.fspath(Path(manual_dir).resolve()))
    try:
        builder.download_and_prepare(download_config=config)
    except Exception as err:  # offline, a manual download needed, a checksum mismatch ...
        raise idx.DataError(f"data.name={name!r}: TFDS could not download and prepare it "
                            f"({type(err).__name__}: {first_line(err)[:300]})") from err
    return builder


def load_tfds_splits(cfg: DataConfig) -> Splits:
    """Splits of `cfg.name` read through its TFDS builder (prepared first if needed), split by
    `splits.split` (protocol holdout uses the dataset's validation split when it has one)."""
    entry = registry.DATASETS.get(cfg.name) or tfds_dataset(cfg.name, cfg.data_dir)
    if cfg.name in BUILDERS:
        manual_dir = _manual_dir(cfg, BUILDERS[cfg.name].name)
        builder = prepared_builder(cfg.name, cfg.data_dir, manual_dir)
    else:
        builder = prepared_tfds(entry.tfds_name or cfg.name, cfg.data_dir, cfg.manual_dir)
    available = set(builder.info.splits)  # (none listed under tfds.testing.mock_data)
    if available and not {"train", "test"} <= available:
        raise idx.DataError(f"data.name={cfg.name!r} has the splits {', '.join(sorted(available))}"
                            "; a train and a test split are needed")
    keys = _keys(builder)
    read = lambda name: read_split(builder, name, entry.image_shape, keys)  # noqa: E731
    validation = (read("validation") if cfg.protocol == "holdout" and "validation" in available
                  else None)
    return split(read("train"), read("test"), cfg.protocol, validation)
