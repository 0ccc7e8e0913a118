"""experiment=fast is what its kept records show: the 10-seed confirmation of the preset's exact
config, and the search whose Pareto front (docs/benchmarks.md, docs/figures/fast_frontier.png)
chose it, regenerated from docs/results/search/ byte for byte. No training."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from benchmark_modules import load_benchmark_module

from cnn_jax.config import from_dictconfig, to_dict
from cnn_jax.results import rundir
from experiments.compose import compose_dictconfig

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "docs" / "results" / "search"


def test_the_presets_ten_seed_record_is_its_config_and_passes_its_bar():
    record = KEPT / "fast_10_seeds"
    preset = to_dict(from_dictconfig(compose_dictconfig("experiment=fast", "train.seeds=10")))
    assert rundir.differences(json.loads((record / "config.json").read_text()), preset) == [], (
        "conf/experiment/fast.yaml changed: confirm it again with `python -m experiments.train "
        "experiment=fast train.seeds=10` and keep its records in docs/results/search/fast_10_seeds")
    metrics = json.loads((record / "metrics.json").read_text())
    accs = [seed["test_acc"] for seed in metrics["per_seed"]]
    assert len(accs) == 10 and metrics["test_acc"] >= 0.99 and min(accs) >= 0.989


def test_the_fast_frontier_table_and_plot_regenerate_from_the_kept_search(tmp_path):
    bench = load_benchmark_module("fast_frontier")
    kept = KEPT / "fast_frontier"
    results = yaml.safe_load((kept / "optimization_results.yaml").read_text())
    points = bench.trials(kept)
    assert len(points) == results["n_trials"] == 40
    front = {str(t["trial"]) for t in results["best_trials"]}
    dominated = {p["trial"] for p in points if any(
        q["val_acc"] >= p["val_acc"] and q["train_seconds"] <= p["train_seconds"] and q != p
        for q in points)}
    assert front == {p["trial"] for p in points} - dominated  # the front is the records' front
    assert bench.front_table(results) in (ROOT / "docs" / "benchmarks.md").read_text()
    bench.plot(points, results, tmp_path / "front.png")
    assert (tmp_path / "front.png").read_bytes() == (
        ROOT / "docs" / "figures" / "fast_frontier.png").read_bytes()
