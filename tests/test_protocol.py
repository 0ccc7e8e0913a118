"""Nielsen's protocol: seeds, best-validation selection, per-seed and per-run summaries."""

import numpy as np
import pytest

from cnn_jax.config import Config, TrainConfig
from cnn_jax.protocol import (
    best_val_so_far,
    improved,
    last_epochs_val_slope,
    per_seed_summary,
    run_summary,
    seeds_of,
    slope_window,
)


def test_best_validation_protocol_takes_test_at_first_best_val_epoch():
    history = [
        {"epoch": 1, "train_loss": [1.0], "val_acc": [0.90], "test_acc": [0.89]},
        {"epoch": 2, "train_loss": [0.5], "val_acc": [0.95], "test_acc": [0.93]},
        {"epoch": 3, "train_loss": [0.4], "val_acc": [0.95], "test_acc": [0.96]},
        {"epoch": 4, "train_loss": [0.3], "val_acc": [0.94], "test_acc": [0.97]},
    ]
    (s,) = per_seed_summary(history, [7])
    assert (s["seed"], s["best_val_epoch"], s["test_acc"], s["last_test_acc"]) == (7, 2, 0.93, 0.97)


def test_a_diverged_seed_is_marked_and_left_out_of_the_means():
    val = [[0.5, 0.7, 0.2], [0.9, None, 0.2], [0.9, None, 0.1]]  # seed 1 diverges at epoch 2
    history = [{"epoch": e + 1, "train_loss": [1.0, v[1] and 1.0, 1.0], "val_acc": v,
                "test_acc": [a and a - 0.1 for a in v]} for e, v in enumerate(val)]
    summary = per_seed_summary(history, [0, 1, 2])
    assert [s["status"] for s in summary] == ["ok", "diverged", "ok"]
    assert [summary[i]["best_val_epoch"] for i in (0, 2)] == [2, 1]  # first epoch on ties
    np.testing.assert_allclose([summary[i]["test_acc"] for i in (0, 2)], [0.8, 0.1])
    run = run_summary(summary)
    assert run["status"] == "diverged" and run["best_val_epoch"] == 2
    assert np.isclose(run["test_acc"], 0.45)


def test_running_best_matches_the_summary_and_seeds_follow_the_config():
    best = best_val_so_far([{"val_acc": [0.5, None]}, {"val_acc": [0.4, 0.3]}], 2)
    assert best.tolist() == [0.5, 0.3]
    assert improved(best, np.array([0.5, np.nan])).tolist() == [False, False]  # ties keep first
    cfg = Config(train=TrainConfig(seeds=3), seed=4)
    assert seeds_of(cfg) == [4, 5, 6] == seeds_of({"seed": 4, "train": {"seeds": 3}})


def test_diverged_seeds_are_those_with_a_missing_or_non_finite_validation_accuracy():
    from cnn_jax.protocol import diverged_seeds

    history = [{"val_acc": [0.5, 0.6, 0.7]}, {"val_acc": [0.6, None, float("nan")]},
               {"val_acc": [0.7, None, float("nan")]}]
    assert diverged_seeds(history, 3).tolist() == [False, True, True]
    assert diverged_seeds(history[:1], 3).tolist() == [False, False, False]
    assert diverged_seeds([], 2).tolist() == [False, False]


def test_the_end_slope_is_each_seeds_least_squares_slope_over_the_last_quarter_of_epochs():
    assert [slope_window(n) for n in (2, 8, 12, 13, 16, 60)] == [3, 3, 3, 4, 4, 15]
    history = [{"val_acc": [0.1, 0.1, 0.1]}, {"val_acc": [0.90, 0.95, 0.9]},
               {"val_acc": [0.92, None, 0.9]},
               {"val_acc": [0.97, 0.96, np.float32(0.9) - np.float32(1e-9)]}]
    slope = last_epochs_val_slope(history, 3)  # epochs 2-4: (0.97 - 0.90) / 2 per epoch
    assert slope[0] == pytest.approx(0.035) and slope[1] is None  # a missing value: no slope
    assert slope[2] == 0.0 and str(slope[2]) == "0.0"  # float32 noise, never "-0.0"
    rising_then_flat = [{"val_acc": [v]} for v in (0.1, 0.5, 0.9, 0.9, 0.9)]
    assert last_epochs_val_slope(rising_then_flat, 1) == [0.0]  # only the last 3 epochs count
    assert last_epochs_val_slope(history[:2], 2) == [None, None]  # fewer epochs than the window
    nan_end = [{"val_acc": [0.5]}, {"val_acc": [0.6]}, {"val_acc": [float("nan")]}]
    assert last_epochs_val_slope(nan_end, 1) == [None]


