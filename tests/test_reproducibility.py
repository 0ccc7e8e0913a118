"""benchmarks/reproducibility.py's comparison: the largest parameter difference over every leaf,
the count of differing test predictions, per-epoch records equal but for their timings, and
pairs that name only runs the script trains."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "reproducibility.py"


def load_script():
    """The script as a module, registered first (its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location("bench_reproducibility", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


repro = load_script()


def tree(scale: float = 1.0) -> dict:
    return {"conv0": {"kernel": np.arange(6, dtype=np.float64).reshape(2, 3) * scale,
                      "bias": np.zeros(3)},
            "dense0": {"kernel": np.ones((2, 4))}}


def test_max_abs_diff_is_zero_only_for_identical_trees_and_finds_the_worst_leaf():
    assert repro.max_abs_diff(tree(), tree()) == 0.0
    other = tree()
    other["dense0"]["kernel"][1, 3] += 2.5e-7   # the last leaf in flattening order
    other["conv0"]["bias"][0] -= 1e-9
    assert repro.max_abs_diff(tree(), other) == pytest.approx(2.5e-7, rel=1e-9)
    assert repro.max_abs_diff(other, tree()) == pytest.approx(2.5e-7, rel=1e-9)
    assert repro.max_abs_diff(tree(), tree(2.0)) == 5.0


def test_max_abs_diff_nan_counts_as_equal_only_where_both_are_nan():
    a, b = tree(), tree()
    a["conv0"]["bias"][1] = b["conv0"]["bias"][1] = np.nan
    assert repro.max_abs_diff(a, b) == 0.0
    b["conv0"]["bias"][2] = np.nan
    assert repro.max_abs_diff(a, b) == np.inf


def test_max_abs_diff_refuses_other_structures_and_shapes():
    other = tree()
    del other["conv0"]["bias"]
    with pytest.raises(ValueError, match="trees differ"):
        repro.max_abs_diff(tree(), other)
    other = tree()
    other["dense0"]["kernel"] = np.ones((4, 2))
    with pytest.raises(ValueError, match="shapes differ"):
        repro.max_abs_diff(tree(), other)


def test_differing_predictions_counts_every_seed_and_image():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = a.copy()
    assert repro.differing_predictions(a, b) == 0
    b[0, 3], b[1, 0], b[1, 2] = 0, 0, 0
    assert repro.differing_predictions(a, b) == 3
    with pytest.raises(ValueError, match="shapes differ"):
        repro.differing_predictions(a, b[:1])


def test_epochs_identical_ignores_timings_only():
    a = [{"epoch": 1, "train_loss": [0.5, 0.25], "val_acc": [0.9, 0.8], "seconds": 3.0}]
    assert repro.epochs_identical(a, [{**a[0], "seconds": 9.0}])
    assert not repro.epochs_identical(a, [{**a[0], "train_loss": [0.5, 0.2500001]}])
    assert not repro.epochs_identical(a, [{**a[0], "val_acc": [0.9, 0.81]}])
    assert not repro.epochs_identical(a, a + a)


def test_compare_and_table_report_each_measure():
    preds = np.zeros((2, 10), dtype=int)
    other = preds.copy()
    other[1, :3] = 1
    a = repro.Record(tree(), preds, [{"epoch": 1, "train_loss": [1.0], "seconds": 1.0}])
    b = repro.Record(tree(), other, [{"epoch": 1, "train_loss": [1.0], "seconds": 2.0}])
    row = repro.compare("p", "x", a, "y", b)
    assert (row.max_param_diff, row.test_images_differ, row.test_images, row.epochs_identical) == (
        0.0, 3, 20, True)
    table = repro.markdown_table([row, repro.Row("q", "x", "z", 3e-8, 0, 20, False)])
    assert "| p | x / y | 0 (bit-identical) | 3 of 20 | yes |" in table
    assert "| q | x / z | 3e-08 | 0 of 20 | no |" in table


def test_every_pair_names_trained_runs_and_flag_ratios_use_the_same_cores():
    flags = ["--a=b"]
    names = {c.name for c in repro.cases_for(flags, repro.ROOT, "0,1", "0")}
    pairs = repro.pairs_for(flags)
    assert all(a in names and b in names and a != b for _, a, b in pairs)
    assert len({(a, b) for _, a, b in pairs}) == len(pairs)
    cores = {c.name: c.cores for c in repro.cases_for(flags, repro.ROOT, "0,1", "0")}
    assert cores["1 core, --a=b"] == cores["1 core"] == "0"
    lines = repro.timing_lines({"2 cores": [1.0, 3.0], "2 cores again": [2.0, 2.0],
                                "1 core": [4.0], "2 cores, --a=b": [3.0, 3.0],
                                "1 core, --a=b": [2.0], "2 cores, 1-thread pool": [5.0]}, flags)
    assert "1 core takes 2.00x the epoch time of 2 cores" in lines
    assert "2 cores, 1-thread pool takes 2.50x the epoch time of 2 cores" in lines
    assert "2 cores: XLA_FLAGS=--a=b takes 1.50x the epoch time of no flags" in lines
    assert "1 core: XLA_FLAGS=--a=b takes 0.50x the epoch time of no flags" in lines


def test_children_get_only_the_case_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--inherited")
    assert "XLA_FLAGS" not in repro.child_env("")
    assert repro.child_env("--x=1")["XLA_FLAGS"] == "--x=1"
    cmd = repro.command(repro.Case("c", "0"), repro.ROOT / "d", ["model=fast"])
    assert cmd[cmd.index("-c") + 1] == "0" and "train.compile_cache=null" in cmd

    assert repro.last_line("Traceback\n  ...\nerror: bad=1 is not known\n\n") == (
        "error: bad=1 is not known")
    assert repro.last_line("") == ""


KERNEL_GRADIENT = '''
import hashlib, os
import jax
import jax.numpy as jnp
import numpy as np
rng = np.random.default_rng(0)
a, b = (jnp.asarray(rng.standard_normal((5760, n), dtype=np.float32)) for n in (25, 20))
# conv1's kernel gradient as im2col computes it in a compiled step: a 5,760-long reduction
out = np.asarray(jax.jit(lambda a, b: a.T @ b)(a, b))
print(len(os.sched_getaffinity(0)), hashlib.md5(out.tobytes()).hexdigest())
'''


@pytest.mark.slow
def test_one_thread_pool_on_two_cores_computes_what_one_core_does(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs 2 CPU cores")
    (tmp_path / "kgrad.py").write_text(KERNEL_GRADIENT)
    env = repro.child_env("")

    def out(cpus, *args):
        cmd = ["taskset", "-c", cpus, sys.executable, *args]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                              check=True)
        return done.stdout.split()

    two = f"{cores[0]},{cores[1]}"
    one_core = out(str(cores[0]), "kgrad.py")
    if out(two, "kgrad.py")[1] == one_core[1]:
        pytest.skip("on this CPU the product's bits do not depend on the core count")
    pooled = out(two, "-c", repro.ONE_THREAD_POOL, "kgrad")
    assert one_core[0] == "1" and pooled[0] == "2"  # the module runs with both cores
    assert pooled[1] == one_core[1]


def test_the_one_thread_pool_callback_computes_what_one_core_does(tmp_path):
    """`experiments.callbacks.OneThreadPool` (each job of `reproduce --launcher joblib`): on two
    cores, the 1-core bits, and the process keeps both cores."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs 2 CPU cores")
    env = repro.child_env("")
    callback = ("from experiments.callbacks import OneThreadPool\n"
                "OneThreadPool().on_job_start(config=None)\n")

    def out(cpus, code):
        cmd = ["taskset", "-c", cpus, sys.executable, "-c", code]
        return subprocess.run(cmd, env=env, capture_output=True, text=True,
                              check=True).stdout.split()

    one_core = out(str(cores[0]), KERNEL_GRADIENT)
    two = f"{cores[0]},{cores[1]}"
    if out(two, KERNEL_GRADIENT)[1] == one_core[1]:
        pytest.skip("on this CPU the product's bits do not depend on the core count")
    assert out(two, callback + KERNEL_GRADIENT) == ["2", one_core[1]]
