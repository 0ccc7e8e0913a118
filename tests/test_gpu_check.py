"""`make gpu-check` (benchmarks/gpu_check.py) on a CPU-only machine: one line, exit status 0."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(__import__("jax").default_backend() != "cpu", reason="an accelerator is here")
def test_gpu_check_says_in_one_line_that_there_is_nothing_to_check():
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], cwd=ROOT, text=True,
                          capture_output=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith("gpu-check: JAX sees no GPU or TPU here (backend cpu")
