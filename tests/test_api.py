"""The public API: names, docstrings, light import, extension from Python and from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnn_jax
from cnn_jax import (
    ACTIVATIONS,
    INIT_SCHEMES,
    OPTIMIZERS,
    POOLS,
    ConvBlockConfig,
    ConvNet,
    DenseConfig,
    LayerInit,
    ModelConfig,
    OptimizerConfig,
    PoolConfig,
    create_state,
    init_params,
    make_optimizer,
    make_train_step,
    max_pool,
    pool,
    register_activation,
    register_init,
    register_optimizer,
    register_pool,
)

ROOT = Path(__file__).resolve().parent.parent
REGISTRIES = {"POOLS", "ACTIVATIONS", "OPTIMIZERS", "INIT_SCHEMES"}
TINY = ["model=nielsen_conv1", "activation=relu", "data.train_limit=500", "train.batch_size=50",
        "train.epochs=1"]  # fmt: skip
PLUGIN = "plugins=[examples.stochastic_pool]"
NO_TABLE = "~hydra.callbacks.ablation_table"  # the table callback has its own tests; saves ~8 s
HEAVY = ("tensorflow_datasets", "hydra", "pandas", "matplotlib", "orbax", "tensorboardX")
IMPORT_PROBE = f"""
import sys
import cnn_jax
print("bare", "jax" in sys.modules)
import cnn_jax.data
print("data", "jax" in sys.modules)
from cnn_jax import *
print("heavy", [m for m in {HEAVY!r} if m in sys.modules])
"""
# The subprocesses run tiny programs whose time is mostly XLA compiling: LLVM -O0 halves that.
O0 = "--xla_backend_optimization_level=0"
FAST_COMPILE = {"XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {O0}"}


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, text=True,
                            env={**os.environ, **FAST_COMPILE},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def procs(tmp_path_factory):
    """Start the slow subprocesses at once (they overlap with the in-process tests)."""
    tmp = tmp_path_factory.mktemp("api")
    data = f"data.dir={ROOT.parent / 'shared' / 'data' / 'mnist'}"
    train = ["-m", "experiments.train"]
    started = {
        "imports": _start(["-c", IMPORT_PROBE]),
        "bad_plugin": _start([*train, "plugins=[examples.no_such_plugin]", *TINY,
                              f"hydra.run.dir={tmp / 'bad'}"]),
        "single": _start([*train, PLUGIN, "pooling.kind=stochastic", *TINY, data,
                          f"hydra.run.dir={tmp / 'single'}"]),
        "sweep": _start([*train, "-m", PLUGIN, "pooling.kind=max,stochastic", *TINY, data,
                         f"hydra.sweep.dir={tmp / 'sweep'}", NO_TABLE]),
    }  # fmt: skip
    yield {"tmp": tmp, **started}
    for proc in started.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def test_all_names_exist_with_a_one_line_summary():
    assert cnn_jax.__all__ == sorted(cnn_jax.__all__) and "__version__" in cnn_jax.__all__
    for name in cnn_jax.__all__:
        obj = getattr(cnn_jax, name)
        if name == "__version__" or name in REGISTRIES:
            continue
        doc = (obj.__doc__ or "").strip()
        summary = doc.splitlines()[0] if doc else ""
        assert summary and not summary.startswith(f"{name}("), f"{name} has no docstring"
    for name in REGISTRIES:
        registry = getattr(cnn_jax, name)
        assert isinstance(registry, dict) and all(callable(f) for f in registry.values())


def test_every_name_the_api_page_lists_is_in_the_package_root():
    import re

    rows = [line.split("|")[1] for line in (ROOT / "docs" / "api.md").read_text().splitlines()
            if line.startswith("| `") and not line.startswith("| `examples/")]
    named = {m for row in rows for m in re.findall(r"`([A-Za-z_]\w*)", row)}
    assert named and named <= set(cnn_jax.__all__), named - set(cnn_jax.__all__)


def test_version_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert cnn_jax.__version__ == project["version"]


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cnn_jax.nope  # noqa: B018


def test_import_is_light(procs):
    code, out, err = _finish(procs["imports"])
    assert code == 0, err[-2000:]
    assert out.split("\n")[:3] == ["bare False", "data False", "heavy []"], out


@pytest.fixture
def toy_components():
    """Register a min pool and a softsign activation; unregister them afterwards."""
    register_pool("toy_min", lambda x, *, window, stride, p, key, train:
                  -max_pool(-x, window, stride))  # fmt: skip
    register_activation("toy_softsign", jax.nn.soft_sign)
    yield
    POOLS.pop("toy_min")
    ACTIVATIONS.pop("toy_softsign")


def test_registered_pool_and_activation_train_one_step(toy_components):
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 28, 28, 1))
    y = jnp.arange(8) % 10
    np.testing.assert_allclose(pool(x, "toy_min", window=2), -max_pool(-x, 2))
    cfg = ModelConfig(conv=(ConvBlockConfig(4, pool=PoolConfig("toy_min")),),
                      dense=(DenseConfig(16),), activation="toy_softsign", init="he")  # fmt: skip
    model = ConvNet(cfg)
    tx = make_optimizer(OptimizerConfig(name="sgd", lr=0.1, schedule="constant"), steps_per_epoch=1)
    state = create_state(jax.jit(lambda k: init_params(model, k))(jax.random.PRNGKey(1)), tx)
    new, metrics = jax.jit(make_train_step(model, tx))(state, x, y, jax.random.PRNGKey(2))
    assert int(new.step) == 1 and bool(jnp.isfinite(metrics["loss"]))
    assert not np.allclose(new.params["conv0"]["kernel"], state.params["conv0"]["kernel"])


def test_unregistered_pool_is_rejected_with_the_live_list():
    with pytest.raises(ValueError, match="pooling.kind='toy_min' is not one of max, avg"):
        PoolConfig("toy_min")


@pytest.fixture
def toy_optimizer_and_init():
    """Register an optimizer and an init scheme; unregister them afterwards."""
    import optax

    register_optimizer("toy_sign_sgd", lambda lr, c: optax.chain(optax.scale_by_sign(),
                                                                  optax.scale(-lr)))  # fmt: skip
    zeros = jax.nn.initializers.zeros
    register_init("toy_zeros", lambda layer, n_out: LayerInit(zeros, zeros))
    yield
    OPTIMIZERS.pop("toy_sign_sgd")
    INIT_SCHEMES.pop("toy_zeros")


def test_registered_optimizer_and_init_pass_config_validation(toy_optimizer_and_init):
    opt = OptimizerConfig(name="toy_sign_sgd", lr=0.01, schedule="constant")
    params = {"w": jnp.ones(3)}
    tx = make_optimizer(opt, steps_per_epoch=1)
    updates, _ = tx.update({"w": jnp.array([2.0, -3.0, 0.0])}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.01, 0.01, 0.0])
    net = ConvNet(ModelConfig(conv=(), dense=(), init="toy_zeros"))
    params = init_params(net, jax.random.PRNGKey(0))
    assert params["output"]["kernel"].shape == (784, 10) and not params["output"]["kernel"].any()


def test_stochastic_pool_plugin_from_the_cli(procs, mnist_dir):
    code, out, err = _finish(procs["single"])
    assert code == 0, err[-2000:]
    metrics = json.loads((procs["tmp"] / "single" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and "pooling.kind=stochastic" in metrics["overrides"]
    config = json.loads((procs["tmp"] / "single" / "config.json").read_text())
    assert config["model"]["conv"][0]["pool"]["kind"] == "stochastic"
    assert config["plugins"] == ["examples.stochastic_pool"]


def test_stochastic_pool_plugin_in_a_multirun(procs, mnist_dir):
    code, out, err = _finish(procs["sweep"])
    assert code == 0, err[-2000:]
    sweep = procs["tmp"] / "sweep"
    kinds = []
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["status"] == "ok", metrics
        kinds.append(json.loads((sweep / job / "config.json").read_text())["model"]["conv"][0])
    assert [k["pool"]["kind"] for k in kinds] == ["max", "stochastic"]


def test_bad_plugin_fails_with_one_line(procs):
    code, out, err = _finish(procs["bad_plugin"])
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: plugins: cannot import 'examples.no_such_plugin'"), err[-1000:]
    assert "Traceback" not in err
