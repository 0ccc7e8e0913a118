"""A run you can watch: the header, the step-level progress inside an epoch (bar on a terminal,
plain lines elsewhere), per-epoch lines, and an epoch run as chunks equal to one whole call."""

from __future__ import annotations

import io
import logging
import time
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.config import (
    Config,
    ConvBlockConfig,
    DataConfig,
    DenseConfig,
    ModelConfig,
    TrainConfig,
)
from cnn_jax.data import Splits
from cnn_jax.models import ConvNet
from cnn_jax.train import make_optimizer, make_train_step
from cnn_jax.train.program import init_states
from cnn_jax.train.programs import epoch_chunks, make_train_epoch
from cnn_jax.train.watch import EpochProgress, epoch_line, header_lines

MODEL = ModelConfig(conv=(ConvBlockConfig(4),), dense=(DenseConfig(16),), activation="relu",
                    init="lecun", name="small")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("steps", [1, 7, 20, 781, 5000])
def test_epoch_chunks_cover_every_step_once_in_near_equal_parts(steps):
    chunks = epoch_chunks(steps)
    assert len(chunks) == min(20, steps)
    assert [s for s, _ in chunks] == list(np.cumsum([0] + [c for _, c in chunks[:-1]]))
    assert sum(c for _, c in chunks) == steps
    assert max(c for _, c in chunks) - min(c for _, c in chunks) <= 1


def test_an_epoch_in_chunks_equals_the_whole_epoch_in_one_call():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 256, (230, 28, 28, 1), np.uint8))
    y = jnp.asarray(rng.integers(0, 10, 230, np.int32))
    net = ConvNet(MODEL)
    tx = make_optimizer(Config().optimizer, 23)
    epoch = jax.jit(make_train_epoch(make_train_step(net, tx), 230, 10, True))
    state = jax.tree_util.tree_map(lambda a: a[0], init_states(net, tx, [0]))
    key = jax.random.PRNGKey(3)
    whole, whole_loss = epoch(state, key, x, y, jnp.int32(0), jnp.int32(23))
    chunked, total = state, 0.0
    for start, count in epoch_chunks(23, 5):
        chunked, part = epoch(chunked, key, x, y, jnp.int32(start), jnp.int32(count))
        total += part
    assert int(chunked.step) == int(whole.step) == 23
    for a, b in zip(jax.tree_util.tree_leaves(whole.params),
                    jax.tree_util.tree_leaves(chunked.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(total) == pytest.approx(float(whole_loss), rel=1e-5)


def test_terminal_gets_a_bar_with_images_per_second_and_eta():
    stream = Terminal()
    watch = EpochProgress(2, 5, 1000, stream=stream)
    for _ in range(4):
        time.sleep(0.15)  # tqdm redraws at most every 0.1 s
        watch.advance(250)
    watch.close()
    out = stream.getvalue()
    assert "epoch 2/5" in out and "img/s" in out and "1.00k/1.00k" in out


def test_no_terminal_gets_plain_periodic_lines(caplog):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="cnn_jax.train"):
        watch = EpochProgress(1, 3, 1000, stream=stream, every_s=0.0)
        watch.advance(400)
        watch.advance(600)  # the epoch's end: the per-epoch line says the rest
        watch.close()
    assert stream.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("epoch 1/3: 400/1,000 images (40%), ")
    assert "img/s, ETA 0:00:" in lines[0]


def test_progress_off_shows_nothing(caplog):
    stream = Terminal()
    with caplog.at_level(logging.INFO, logger="cnn_jax.train"):
        watch = EpochProgress(1, 1, 10, enabled=False, stream=stream, every_s=0.0)
        watch.advance(5)
        watch.close()
    assert stream.getvalue() == "" and not caplog.records


def test_header_says_what_is_trained_where():
    rng = np.random.default_rng(0)
    part = lambda n: (rng.integers(0, 256, (n, 28, 28, 1), np.uint8), np.zeros(n, np.int32))
    splits = Splits(*part(120), *part(30), *part(40))
    cfg = Config(model=MODEL, data=DataConfig(protocol="full"),
                 train=TrainConfig(batch_size=10, seeds=3, epochs=4, concurrent_seeds=1))
    lines = header_lines(cfg, splits, "idx", [0, 1, 2], "loop")
    assert len(lines) == 4
    assert lines[0].startswith("model small: conv 4@5x5 max-pool, FC16, relu; ")
    assert "params" in lines[0] and "MFLOPs/image" in lines[0]
    assert "train 120 / val 30 / test 40; minibatch 10 -> 12 steps/epoch, 4 epochs" in lines[1]
    assert lines[2] == ("seeds 0, 1, 2: one compiled one-seed program, seed after seed "
                        "(train.seed_batching=auto)")
    two = replace(cfg, train=replace(cfg.train, concurrent_seeds=2))
    assert header_lines(two, splits, "idx", [0, 1, 2], "loop")[2] == (
        "seeds 0, 1, 2: one compiled one-seed program, 2 seeds at a time "
        "(train.seed_batching=auto, train.concurrent_seeds=2)")
    assert lines[3].startswith(f"device: {jax.devices()[0].platform}")
    assert "compile cache: " in lines[3]


def test_epoch_line_averages_the_seeds():
    record = {"epoch": 3, "train_loss": [0.2, 0.4], "val_acc": [0.98, 0.99],
              "test_acc": [0.97, float("nan")], "seconds": 12.34}
    assert epoch_line(record, 60) == ("epoch 3/60: loss 0.3000, val 98.50%, test 97.00% "
                                      "(means of 2 seeds); 12.3 s")
