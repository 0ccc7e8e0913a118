"""IDX files (gzip or raw): find the four MNIST-format files, parse them, check content md5s."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cnn_jax.errors import setting

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dims
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dim

# The four files, by role, as named in the official distributions (each may also be raw, no .gz).
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# md5 of the UNCOMPRESSED content (gzip bytes vary with the compressor; the content must not).
MD5 = {
    "mnist": {
        "train_images": "6bbc9ace898e44ae57da46a324031adb",
        "train_labels": "a25bea736e30d166cdddb491f175f624",
        "test_images": "2646ac647ad5339dbf082846283269ea",
        "test_labels": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
        "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
        "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}


class DataError(ValueError):
    """Dataset files are missing or invalid; the message is one line naming the file and problem."""


def find_files(directory: str | os.PathLike) -> dict[str, Path]:
    """Paths of the four IDX files in `directory` (`<name>.gz` preferred, else raw `<name>`)."""
    root = Path(directory).expanduser().resolve()
    found, missing = {}, []
    for role, name in FILES.items():
        for candidate in (root / f"{name}.gz", root / name):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(name)
    if missing:
        expected = ", ".join(f"{n}[.gz]" for n in FILES.values())
        which = "" if len(missing) == len(FILES) else f" (missing: {', '.join(missing)})"
        raise DataError(
            f"dataset files not found in {root}{which}: expected {expected}; put the four files "
            f"there or set {setting('data.dir', '<folder holding them>')}, or use "
            f"{setting('data.source', 'auto')} (the default) to download them when online"
        )
    return found


def has_files(directory: str | os.PathLike | None) -> bool:
    """Whether `directory` holds the four IDX files."""
    if directory is None:
        return False
    try:
        find_files(directory)
    except DataError:
        return False
    return True


def read_bytes(path: str | os.PathLike) -> bytes:
    """The uncompressed content of an IDX file, gunzipping when it starts with the gzip magic."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from err
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip stream ({err})") from err


def md5_hex(data: bytes) -> str:
    """Hex md5 of `data`."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def parse_idx(data: bytes, path: str | os.PathLike, magic: int) -> np.ndarray:
    """Parse IDX bytes of unsigned-byte type into an array; `path` only names the file in errors."""
    if len(data) < 4:
        raise DataError(f"{path}: truncated: {len(data)} bytes, shorter than the IDX header")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise DataError(f"{path}: wrong magic number 0x{got:08x}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated: {len(data)} bytes, header needs {header}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    need = header + int(np.prod(dims))
    if len(data) < need:
        raise DataError(f"{path}: truncated: {len(data)} bytes, dims {dims} need {need}")
    if len(data) > need:
        raise DataError(f"{path}: {len(data) - need} trailing bytes after dims {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(
    path: str | os.PathLike, magic: int, expected_md5: str | None = None
) -> tuple[np.ndarray, str]:
    """Read, parse and (if `expected_md5` is given) verify one IDX file; returns (array, md5)."""
    data = read_bytes(path)
    digest = md5_hex(data)
    array = parse_idx(data, path, magic)
    if expected_md5 is not None and digest != expected_md5:
        raise DataError(
            f"{path}: md5 mismatch of the uncompressed content: got {digest}, "
            f"expected {expected_md5} (corrupt or a different dataset)"
        )
    return array, digest


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when `path` ends in .gz); returns the path."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def load_idx_paths(
    paths: Mapping[str, str | os.PathLike],
    md5s: Mapping[str, str] | None = None,
    image_hw: tuple[int, int] | None = None,
    num_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """Arrays `train_images, train_labels, test_images, test_labels` from their four paths;
    images must be `image_hw` and labels below `num_classes` where those are given."""
    out = {}
    for role in FILES:
        magic = IMAGES_MAGIC if role.endswith("images") else LABELS_MAGIC
        out[role], _ = read_idx(paths[role], magic, None if md5s is None else md5s.get(role))
        dims = out[role].shape
        if role.endswith("images") and image_hw is not None and dims[1:] != tuple(image_hw):
            raise DataError(f"{paths[role]}: wrong dims {dims}, expected (N, "
                            f"{', '.join(map(str, image_hw))})")
    for split in ("train", "test"):
        n_img, n_lab = len(out[f"{split}_images"]), len(out[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{paths[f'{split}_labels']}: wrong dims: {n_lab} labels for {n_img} images"
            )
        if num_classes is not None and n_lab and out[f"{split}_labels"].max() >= num_classes:
            raise DataError(f"{paths[f'{split}_labels']}: label values outside "
                            f"0..{num_classes - 1}")
    return out


def load_idx_dir(
    directory: str | os.PathLike,
    md5s: Mapping[str, str] | None = None,
    image_hw: tuple[int, int] | None = None,
    num_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """The four verified arrays from one folder (see `find_files` for the names accepted)."""
    return load_idx_paths(find_files(directory), md5s, image_hw, num_classes)
