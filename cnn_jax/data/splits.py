"""Splits (train / validation / test as uint8 NHWC numpy) and the one rule that makes them.

protocol "nielsen": the first 50,000 training images train, the rest validate (MNIST's default);
"full": every training image trains and the test set is also the validation set;
"holdout": the dataset's own validation split when it has one, else the last tenth of the
training images (carved before any `train_limit`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnn_jax.data.idx import DataError
from cnn_jax.errors import field_name, setting

PROTOCOLS = ("nielsen", "full", "holdout")
NIELSEN_TRAIN = 50_000
HOLDOUT_FRACTION = 0.1

Pair = tuple[np.ndarray, np.ndarray]


class Splits(NamedTuple):
    """Images uint8 (N, H, W, C) NHWC and labels int32 (N,) for train, validation and test."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def check_nielsen_size(n_train: int) -> None:
    """Nielsen's split needs more than 50,000 training images (the rest is validation)."""
    if n_train <= NIELSEN_TRAIN:
        raise DataError(
            f"{setting('data.protocol', 'nielsen')} needs more than {NIELSEN_TRAIN} training "
            f"images, the data holds {n_train}; use {setting('data.protocol', 'full')} or "
            f"{setting('data.protocol', 'holdout')} (or {field_name('data.train_limit')} for "
            "small runs)"
        )


def holdout_size(n_train: int) -> int:
    """How many of the last training images validate under holdout without a validation split."""
    return max(1, round(n_train * HOLDOUT_FRACTION))


def split(train: Pair, test: Pair, protocol: str, validation: Pair | None = None) -> Splits:
    """train / val / test of a dataset's train and test (and own validation) arrays."""
    (tx, ty), (sx, sy) = train, test
    if protocol == "nielsen":
        check_nielsen_size(len(tx))
        return Splits(tx[:NIELSEN_TRAIN], ty[:NIELSEN_TRAIN], tx[NIELSEN_TRAIN:],
                      ty[NIELSEN_TRAIN:], sx, sy)
    if protocol == "full":
        return Splits(tx, ty, sx, sy, sx, sy)
    if protocol == "holdout":
        if validation is not None:
            return Splits(tx, ty, *validation, sx, sy)
        if len(tx) < 2:
            raise DataError(f"data.protocol=holdout needs at least 2 training images, the data "
                            f"holds {len(tx)}")
        cut = len(tx) - holdout_size(len(tx))
        return Splits(tx[:cut], ty[:cut], tx[cut:], ty[cut:], sx, sy)
    raise DataError(f"data.protocol={protocol!r} is not one of {', '.join(PROTOCOLS)}")


def validation_note(protocol: str, own_validation: bool) -> str:
    """Where the validation images come from, in words (the run header states it)."""
    if protocol == "nielsen":
        return f"val = training images after the first {NIELSEN_TRAIN:,}"
    if protocol == "full":
        return "val = test"
    if own_validation:
        return "val = the dataset's validation split"
    return f"val = last {HOLDOUT_FRACTION:.0%} of train (the dataset has no validation split)"
