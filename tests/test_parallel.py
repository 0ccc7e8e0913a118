"""Data parallel training over two (forced) CPU devices agrees with one device.

Runs in a subprocess: XLA_FLAGS must be set before JAX starts, and this process has one device.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cnn_jax.config import ConfigError, TrainConfig

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from cnn_jax.config import (Config, ConvBlockConfig, DenseConfig, ModelConfig,
                                OptimizerConfig, TrainConfig)
    from cnn_jax.data import Splits
    from cnn_jax.train import fit, make_optimizer, make_train_epoch, make_train_step
    from cnn_jax.train.program import init_states
    from cnn_jax.train.parallel import batch_axis_sharding, data_mesh
    from cnn_jax.models import ConvNet

    rng = np.random.default_rng(0)
    def part(n):
        return rng.integers(0, 256, (n, 28, 28, 1), np.uint8), rng.integers(0, 10, n, np.int32)
    splits = Splits(*part(256), *part(60), *part(60))
    model = ModelConfig(conv=(ConvBlockConfig(4),), dense=(DenseConfig(16),), activation="relu",
                        init="lecun")
    out = {"devices": jax.device_count()}
    for seeds in (1, 2):
        runs = {}
        for devices in (1, 2):
            cfg = Config(model=model, optimizer=OptimizerConfig("momentum", lr=0.05, momentum=0.9,
                                                   schedule="constant"),
                         train=TrainConfig(epochs=2, batch_size=32, seeds=seeds, devices=devices,
                                           eval_batch_size=30, progress=False))
            runs[devices] = fit(cfg, splits)
        leaves = [jax.tree_util.tree_leaves(runs[d].progress.state.params) for d in (1, 2)]
        out[f"seeds{seeds}"] = {
            "max_param_diff": max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                                  for a, b in zip(*leaves)),
            "loss": [runs[d].history[-1]["train_loss"] for d in (1, 2)],
            "test": [runs[d].history[-1]["test_acc"] for d in (1, 2)],
            "sharding": str(leaves[1][0].sharding),
        }
    # the compiled epoch really is partitioned: gradients are summed across devices
    mesh = data_mesh(2)
    net = ConvNet(model)
    tx = make_optimizer(OptimizerConfig("sgd", lr=0.1, schedule="constant"), 8)
    epoch = make_train_epoch(make_train_step(net, tx), 256, 32, True, batch_axis_sharding(mesh))
    state = jax.tree_util.tree_map(lambda a: a[0], init_states(net, tx, [0]))
    hlo = jax.jit(epoch).lower(state, jax.random.PRNGKey(0), *part(256)).compile().as_text()
    out["all_reduce"] = "all-reduce" in hlo
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def two_device_run():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_devices_are_visible(two_device_run):
    assert two_device_run["devices"] == 2


@pytest.mark.parametrize("seeds", [1, 2])
def test_data_parallel_matches_one_device(two_device_run, seeds):
    r = two_device_run[f"seeds{seeds}"]
    assert r["max_param_diff"] < 1e-5, r
    assert r["loss"][0] == pytest.approx(r["loss"][1], rel=1e-5, abs=1e-6)
    assert r["test"][0] == r["test"][1]
    assert "NamedSharding" in r["sharding"]  # parameters replicated over the mesh


def test_data_parallel_program_sums_gradients_across_devices(two_device_run):
    assert two_device_run["all_reduce"]


def test_batch_must_split_evenly_over_devices():
    with pytest.raises(ConfigError, match=r"train.batch_size=10 must be a multiple of "
                                          r"train.devices=3"):
        TrainConfig(batch_size=10, devices=3)


def test_more_devices_than_visible_is_a_clear_error():
    from cnn_jax.train.parallel import data_mesh

    with pytest.raises(ValueError, match=r"train.devices=64 is not in 1..1"):
        data_mesh(64)
