"""The vote of several nets, and its recomputation from each net's test errors."""

from __future__ import annotations

import json

import numpy as np

from cnn_jax import experiment
from cnn_jax.results import records
from cnn_jax.train.ensemble import errors_of, plurality_vote, vote_errors
from experiments.compose import compose_config


def test_vote_from_the_nets_errors_equals_the_vote_of_their_predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    # 5 nets, each wrong on ~30% of the images, often agreeing on the same wrong class
    shared_wrong = (labels + 1) % 10
    predictions = np.stack([np.where(rng.random(2000) < 0.3,
                                     np.where(rng.random(2000) < 0.5, shared_wrong,
                                              rng.integers(0, 10, 2000)), labels)
                            for _ in range(5)])
    voted = plurality_vote(predictions, 10)
    expected = [[int(i), int(labels[i]), int(voted[i])] for i in np.flatnonzero(voted != labels)]
    errors = errors_of(predictions, labels)
    assert [len(e) for e in errors] == list((predictions != labels).sum(1))
    assert len(expected) > 50  # the vote gets a fair number wrong: ties and shared errors occur
    assert vote_errors(errors, 10) == expected


def test_vote_errors_ties_go_to_the_lower_class_as_the_vote_does():
    # image 4, label 3: nets say 3, 1, 1, 3 -> tie between 1 and 3 -> 1 (the lower): an error;
    # image 7, label 2: nets say 5, 5, 2, 8 -> 5
    errors = [[[7, 2, 5]], [[4, 3, 1], [7, 2, 5]], [[4, 3, 1]], [[7, 2, 8]]]
    assert vote_errors(errors, 10) == [[4, 3, 1], [7, 2, 5]]
    assert vote_errors([[], []], 10) == []


def test_a_run_records_its_nets_test_errors_consistent_with_its_accuracies(tmp_path, mnist_dir):
    tiny = ("model=nielsen_conv1", "data.train_limit=2000", "optimizer.schedule=constant",
            "train.batch_size=50", "train.epochs=1", "train.progress=false",
            f"data.dir={mnist_dir}")
    cfg = compose_config(*tiny, "train.seeds=3", "train.vote=true", "train.test_errors=true")
    metrics = experiment.run(cfg, tmp_path)
    saved = records.read_test_errors(tmp_path)
    assert saved["images"] == 10_000 and saved["seeds"] == [0, 1, 2]
    for seed, net in zip(metrics["per_seed"], saved["errors"], strict=True):
        assert 0 < len(net) == round((1 - seed["test_acc"]) * 10_000) < 5_000
        assert all(label != predicted for _, label, predicted in net)
    vote = vote_errors(saved["errors"], 10)
    assert round(metrics["vote_test_acc"] * 10_000) == 10_000 - len(vote)
    assert (tmp_path / records.TEST_ERRORS).read_text().count("\n") == 3 + 2  # a line per seed
    # a run without train.test_errors started over in this dir leaves none behind
    experiment.run(compose_config(*tiny, "train.resume=false"), tmp_path)
    assert not (tmp_path / records.TEST_ERRORS).exists()
    assert json.loads((tmp_path / records.METRICS).read_text()).get("vote_test_acc") is None
