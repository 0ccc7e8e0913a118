"""Shared fixtures: paths to ../shared data, a tiny split made of real MNIST images; a
session-wide XLA compile cache."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# One compile cache for this test session, cold at its start: in-process fits and the CLI,
# example and script subprocesses (which inherit these variables) load the programs already built.
# pytest-xdist workers inherit the controller's directory; only its creator removes it.
_CACHE = os.environ.get("CNN_JAX_TEST_COMPILE_CACHE")
if _CACHE is None:
    _CACHE = os.environ["CNN_JAX_TEST_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="cnn_jax_xla_")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ["CNN_JAX_COMPILE_CACHE"] = _CACHE
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(2**30)  # also turns on the cache's file lock
ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found in {MNIST_DIR}")
    return MNIST_DIR


@pytest.fixture(scope="session")
def tiny_splits(mnist_dir):
    """600 train / 200 val / 200 test real MNIST images."""
    from cnn_jax.config import DataConfig
    from cnn_jax.data import load_splits

    s = load_splits(DataConfig(dir=str(mnist_dir)))
    return type(s)(s.train_x[:600], s.train_y[:600], s.val_x[:200], s.val_y[:200],
                   s.test_x[:200], s.test_y[:200])


@pytest.fixture
def other_process_holding():
    """A context manager: `with other_process_holding(run_dir) as pid:` another process (pid)
    holds run_dir (`cnn_jax.results.rundir.held`) until the block ends, when it is SIGKILLed."""
    import contextlib
    import subprocess
    import sys

    script = ("import sys\nfrom cnn_jax.results.rundir import held\nwith held(sys.argv[1]):\n"
              "    print('held', flush=True)\n    sys.stdin.read()\n")

    @contextlib.contextmanager
    def holding(run_dir: Path):
        proc = subprocess.Popen([sys.executable, "-c", script, str(run_dir)], cwd=ROOT,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "held\n"
            yield proc.pid
        finally:
            proc.kill()
            proc.wait(timeout=60)

    return holding


@pytest.fixture(autouse=True)
def forget_plugin_models():
    """Hydra's ConfigStore as it was before each test (loading a plugin stores its models' and
    components' nodes in this process-wide store; other tests list those groups without them)."""
    import copy

    from hydra.core.config_store import ConfigStore

    groups = ("model", "pooling", "activation", "optimizer")
    repo = ConfigStore.instance().repo
    saved = {g: copy.deepcopy(repo.get(g)) for g in groups}
    yield
    for group, nodes in saved.items():
        if nodes is None:
            repo.pop(group, None)
        else:
            repo[group] = nodes
