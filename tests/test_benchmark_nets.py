"""benchmarks/nets.py: every named net composes from conf/ into the layers its name promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_nets", ROOT / "benchmarks" / "nets.py")
nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nets)

# name -> (conv features, FC widths, activation, FC input dropout, optimizer)
EXPECTED = {
    "nielsen_conv1": ((20,), (100,), "sigmoid", 0.0, "sgd"),
    "nielsen_conv2": ((20, 40), (100,), "sigmoid", 0.0, "sgd"),
    "row5": ((20, 40), (100,), "relu", 0.0, "sgd"),
    "row8": ((20, 40), (1000, 1000), "relu", 0.5, "sgd"),
    "fc100": ((), (100,), "sigmoid", 0.0, "sgd"),
    "fast": ((24, 32), (256,), "relu", 0.0, "adam"),
}


def test_every_net_is_checked():
    assert set(nets.NETS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_net_composes_to_its_layers(name):
    cfg = nets.net_config(name)
    features, widths, act, rate, opt = EXPECTED[name]
    assert tuple(b.features for b in cfg.model.conv) == features
    assert tuple(d.units for d in cfg.model.dense) == widths
    assert {d.dropout for d in cfg.model.dense} == {rate}
    assert (cfg.model.activation, cfg.optimizer.name) == (act, opt)
