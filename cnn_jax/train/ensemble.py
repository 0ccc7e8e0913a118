"""Plurality vote of several networks (a leading seed axis of parameters), and each net's test
errors: the [index, label, predicted] of every image it gets wrong, from which the vote of nets
trained in separate runs is recomputed without the data (`vote_errors`)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import numpy as np

from cnn_jax.models.forward import predict


def seed_predictions(model: nn.Module, stacked_params: Any, x: jax.Array, batch: int = 1000):
    """Predicted classes [seeds, n] of every seed's network, in batches."""
    return predict(model, stacked_params, x, batch)


def plurality_vote(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """The most-voted class per column of [voters, n] predictions; ties go to the lower class."""
    counts = np.stack([(predictions == c).sum(0) for c in range(num_classes)])
    return counts.argmax(0)


def errors_of(predictions: np.ndarray, labels: np.ndarray) -> list[list[list[int]]]:
    """Per row of [nets, n] predictions: [index, label, predicted] of each image it gets wrong."""
    labels = np.asarray(labels)
    return [[[int(i), int(labels[i]), int(row[i])] for i in np.flatnonzero(row != labels)]
            for row in np.asarray(predictions)]


def vote_errors(errors: list[list[list[int]]], num_classes: int) -> list[list[int]]:
    """[index, label, voted] of each image the plurality vote of these nets gets wrong, from the
    nets' errors alone (`errors_of`): a net votes the label on every image it does not list."""
    wrong = [{i: p for i, _, p in net} for net in errors]
    labels = {i: label for net in errors for i, label, _ in net}
    out = []
    for i in sorted(labels):
        votes = np.array([[net.get(i, labels[i])] for net in wrong])
        voted = int(plurality_vote(votes, num_classes)[0])
        if voted != labels[i]:
            out.append([i, labels[i], voted])
    return out
