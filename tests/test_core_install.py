"""The core install (JAX, Flax, optax, numpy and what the library imports) is enough for
`import cnn_jax`, every public name and every library module but the few that need an extra;
checked in a subprocess where the extras' modules cannot be imported (no venv build).
tests/test_examples.py runs the examples and docs/api.md's code the same way."""

from __future__ import annotations

import json
import subprocess
import sys

from core_only import ROOT, blocker, extra_modules

# Library modules that need an extra (they are imported only where that extra's feature is used).
NEEDS_EXTRA = {
    "cnn_jax.data.builders": "tensorflow_datasets",  # tfds
    "cnn_jax.results.tables": "pandas",  # results
    "cnn_jax.results.ablation_figure": "pandas",  # results
    "cnn_jax.results.significance": "pandas",  # results
    "cnn_jax.results.figures": "matplotlib",  # results
}

SCRIPT = """
import importlib, json, pkgutil, sys
import cnn_jax
names = {name: type(getattr(cnn_jax, name)).__name__ for name in cnn_jax.__all__}
failed = {}
for info in pkgutil.walk_packages(cnn_jax.__path__, "cnn_jax."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as err:
        failed[info.name] = err.name.split(".")[0]
from cnn_jax.config import DataConfig
from cnn_jax.data import DataError, load_splits
try:
    load_splits(DataConfig(dir=sys.argv[1]))
    data_error = None
except DataError as err:
    data_error = str(err)
print(json.dumps({"names": len(names), "failed": failed, "data_error": data_error,
                  "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_the_extras_modules_are_known():
    modules = extra_modules()
    assert {"hydra", "omegaconf", "tensorflow_datasets", "pandas", "matplotlib",
            "tensorboardX", "submitit"} <= modules
    assert not {"jax", "flax", "optax", "numpy", "orbax", "tqdm"} & modules


def test_core_imports_everything_but_the_extras_modules(tmp_path):
    blocked = extra_modules()
    done = subprocess.run([sys.executable, "-c", blocker(blocked) + SCRIPT, str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["failed"] == NEEDS_EXTRA
    assert out["names"] == len(__import__("cnn_jax").__all__)
    assert not blocked & set(out["loaded"])
    # auto source, no IDX files, no TFDS: one line saying how to get either
    msg = out["data_error"]
    assert msg.startswith(f"dataset files not found in {tmp_path} ") and "\n" not in msg
    assert "cnn-jax[tfds]" in msg and "DataConfig(dir=<folder holding them>)" in msg
