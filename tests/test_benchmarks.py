"""The benchmarks' helper modules: every named net of benchmarks/nets.py composes from conf/ into
the layers its name promises; benchmarks/timing.py reports seconds per call, best of its repeats,
after a compile-and-warm-up call that is not timed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from benchmark_modules import load_benchmark_module

ROOT = Path(__file__).resolve().parent.parent



nets = load_benchmark_module("nets")
timing = load_benchmark_module("timing")

# name -> (conv features, FC widths, activation, FC input dropout, optimizer)
EXPECTED = {
    "nielsen_conv1": ((20,), (100,), "sigmoid", 0.0, "sgd"),
    "nielsen_conv2": ((20, 40), (100,), "sigmoid", 0.0, "sgd"),
    "row5": ((20, 40), (100,), "relu", 0.0, "sgd"),
    "row8": ((20, 40), (1000, 1000), "relu", 0.5, "sgd"),
    "fc100": ((), (100,), "sigmoid", 0.0, "sgd"),
    "fast": ((24, 32), (256,), "relu", 0.0, "adam"),
    "fast_v1": ((24, 32), (256,), "relu", 0.0, "adam"),
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


def test_seconds_per_call_is_per_call_and_skips_the_first_call():
    calls = []

    def fn(x):
        time.sleep(0.5 if not calls else 0.002)  # a slow first call, like a compile
        calls.append(x)
        return x

    seconds = timing.seconds_per_call(fn, 1, repeats=2, min_seconds=0.01)
    assert 0.002 <= seconds < 0.25  # per call (not per timing), the slow first call left out
    assert len(calls) >= 1 + 1 + 2  # warm-up, at least one calibration call, 2 timed repeats


def test_the_fast_preset_is_the_searched_recipe_and_the_one_before_it_stays_reachable():
    new, old = nets.net_config("fast"), nets.net_config("fast_v1")
    assert [(b.stride, b.pool.kind) for b in new.model.conv] == [(2, "none"), (1, "max")]
    assert [(b.stride, b.pool.kind) for b in old.model.conv] == [(1, "max"), (1, "max")]
    assert (new.data.protocol, new.data.train_limit, new.train.epochs) == ("full", 50000, 1)
    assert (old.data.protocol, old.data.train_limit, old.train.epochs) == ("full", None, 1)


@pytest.mark.parametrize("engine", ["lanes", "joblib"])
def test_reproduce_engines_runs_reproduce_as_each_engine_with_the_budget(engine, tmp_path,
                                                                          capsys, monkeypatch):
    """benchmarks/reproduce_engines.py's commands: each engine's options and the reduced budget
    are what reproduce accepts, and they choose the 4 jobs it names."""
    from experiments.reproduce import __main__ as cli
    from experiments.reproduce import run

    bench = load_benchmark_module("reproduce_engines")
    args = bench.argparse.Namespace(sweep=["pooling=max,none"], train_limit=500, epochs=1,
                                    seeds=1, data_dir=tmp_path)
    extra = bench.overrides(args)
    assert "data.train_limit=500" in extra and "train.checkpoint=false" in extra
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    monkeypatch.setattr(run, "lane_cores", lambda lanes: [0, 1][:lanes])
    argv = ["ablation_stride", "--runs", str(tmp_path), "--out", str(tmp_path / "out"),
            "--dry-run", *bench.engines(2)[engine], *extra]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert f"launcher {engine} (2 at once)" in text
    if engine == "lanes":
        assert text.count("== [core ") == 4
    else:
        assert text.count("   joblib job ") == 4
