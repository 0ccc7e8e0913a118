"""The sweeper objective: a validation metric; the worst value for a failed or diverged run."""

import pytest

from cnn_jax.config import ConfigError
from cnn_jax.results.objective import check_metric, objective

OK = {"status": "ok", "val_acc": 0.97, "test_acc": 0.99}


def test_objective_is_the_validation_metric_not_test():
    assert objective(OK) == 0.97
    assert objective(OK, "val_acc") == 0.97


@pytest.mark.parametrize("metrics", [
    None,
    {"status": "failed", "error": "boom"},
    {"status": "diverged", "val_acc": 0.5},
    {"status": "ok", "val_acc": None},
    {"status": "ok", "val_acc": float("nan")},
])
def test_failed_or_diverged_run_scores_the_worst_value(metrics):
    assert objective(metrics) == 0.0


def test_test_metrics_cannot_be_optimised():
    with pytest.raises(ConfigError, match=r"optimized_metric='test_acc' is not one of val_acc"):
        check_metric("test_acc")


def test_a_list_names_several_objectives_each_with_its_direction_and_worst_value():
    from cnn_jax.results.objective import directions

    spec = ["val_acc", "train_seconds"]
    assert directions(spec) == ["maximize", "minimize"]
    assert objective({**OK, "train_seconds": 6.5}, spec) == [0.97, 6.5]
    assert objective({"status": "failed"}, spec) == [0.0, float("inf")]
    assert check_metric(spec) == ("val_acc", "train_seconds")
    with pytest.raises(ConfigError, match=r"optimized_metric='test_acc' is not one of"):
        check_metric(["val_acc", "test_acc"])
    with pytest.raises(ConfigError, match=r"name each objective once"):
        check_metric(["val_acc", "val_acc"])
