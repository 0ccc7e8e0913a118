"""Command-line mistakes are one line and exit 2, answered before Hydra runs and JAX loads."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.preflight import check, help_text, schema_keys, unknown_key

ROOT = Path(__file__).resolve().parent.parent


def test_an_unknown_key_names_the_closest_schema_keys_never_a_plus_key():
    error = check(["train.batchsize=32"])
    assert error.startswith("train.batchsize is not a known config key; did you mean ")
    assert "train.batch_size" in error and "+" not in error
    assert check(["poolng=max"]).startswith("poolng is not a known config key; did you mean "
                                            "pooling")
    assert check(["model.conv.0.strde=2", "model=nielsen_conv1"]).startswith(
        "model.conv.0.strde is not a known config key; did you mean model.conv.0.stride")


def test_known_keys_group_options_and_explicit_additions_pass():
    assert check(["train.batch_size=32", "pooling=l2", "model=nielsen_conv1",
                  "model.conv.0.stride=2"]) is None
    assert check(["+extra.note=hello"]) is None  # asked for a new key, knowingly
    assert unknown_key(["optimizer.b1=0.8"], {}) is None  # in the schema, whatever the YAML has


def test_schema_keys_are_read_without_building_a_config():
    keys = schema_keys()
    assert {"train.batch_size", "data.train_limit", "seed", "plugins"} <= keys
    assert "train" in keys and "model" in keys  # a model's own keys: from the composed config


def test_a_bad_group_option_lists_the_options():
    assert check(["pooling=foo"]) == (
        "pooling='foo' is not one of avg, l2, lp, max, max_overlap, none, strided")


def test_a_preset_that_sweeps_needs_m_and_its_jobs_are_checked_before_any_runs():
    error = check(["experiment=ablation_pooling"])
    assert error == ("experiment=ablation_pooling defines a sweep over pooling, activation; run "
                     "it with -m (python -m experiments.train -m experiment=ablation_pooling)")
    assert check(["-m", "experiment=ablation_pooling"]) is None
    error = check(["experiment=ablation_pooling", "pooling=avg"])
    assert error.startswith("experiment=ablation_pooling defines a sweep over activation; run it")
    # every swept key set to one value: one job of the sweep, as `reproduce` runs each cell
    assert check(["experiment=ablation_pooling", "pooling=avg", "activation=tanh"]) is None
    error = check(["-m", "experiment=ablation_stride", "train.epochs=0"])
    assert error.startswith("job 0 (") and error.endswith("train.epochs=0 must be an integer >= 1")
    error = check(["-m", "optimizer.lr=0.1,-1"])
    assert error.startswith("job 1 (optimizer.lr=-1)") and "optimizer.lr=-1" in error


def test_a_refused_value_is_named():
    assert check(["train.epochs=0"]) == "train.epochs=0 must be an integer >= 1"


def test_a_plugins_names_are_group_options_like_built_ins():
    plugin = "plugins=[examples.stochastic_pool]"
    assert check(["pooling=stochastic", plugin]) is None
    assert check(["pooling=stochastik", plugin]).startswith("pooling='stochastik' is not one of")
    from experiments.compose import compose_config

    cfg = compose_config("pooling=stochastic", "model=nielsen_conv1", plugin)
    assert cfg.model.conv[0].pool.kind == "stochastic"


def test_help_lists_the_groups_and_their_options():
    text = help_text()
    assert "pooling" in text and "max_overlap" in text and "nielsen/row2" in text


@pytest.mark.parametrize("args,needle", [
    (["pooling=foo"], "error: pooling='foo' is not one of"),
    (["train.batchsize=32"], "error: train.batchsize is not a known config key"),
    (["experiment=ablation_pooling"], "run it with -m"),
])
def test_the_command_answers_a_mistake_in_one_line_exit_2_quickly(args, needle, tmp_path):
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and needle in proc.stderr
    assert "jax" not in proc.stderr.lower() and not list(tmp_path.iterdir())  # no run dir
    print(f"{args}: {seconds:.2f} s")  # speed is measured in docs/benchmarks.md, not asserted


def test_nothing_heavy_is_imported_before_a_mistake_is_answered():
    code = ("import sys\nfrom experiments.preflight import check\n"
            "assert check(['train.batchsize=32'])\nassert check(['pooling=foo'])\n"
            "assert check(['experiment=ablation_pooling'])\n"
            "print(sorted(m for m in ('jax', 'flax', 'optax', 'tensorflow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_a_search_preset_without_m_names_itself():
    assert check(["hparams_search=mnist_optuna", "train.epochs=2"]) == (
        "hparams_search=mnist_optuna defines a sweep over optimizer.lr, optimizer.l2, dropout; "
        "run it with -m (python -m experiments.train -m hparams_search=mnist_optuna "
        "train.epochs=2)")
