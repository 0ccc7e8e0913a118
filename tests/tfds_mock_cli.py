"""Shared by the own-data and own-model tests: the command line run under TFDS's mock data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI_UNDER_MOCK = """
import runpy, sys
import tensorflow_datasets as tfds
sys.argv = ["experiments.train", *sys.argv[1:]]
with tfds.testing.mock_data(num_examples=40):
    runpy.run_module("experiments.train", run_name="__main__")
"""
FAST_COMPILE = {"XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                             "--xla_backend_optimization_level=0"}  # tiny programs: LLVM -O0


def train_under_mock(*overrides: str) -> subprocess.CompletedProcess:
    """`python -m experiments.train OVERRIDES` (its __main__ block) with every TFDS dataset
    mocked: 40 random examples per split, of the dataset's own shape and classes."""
    return subprocess.run([sys.executable, "-c", CLI_UNDER_MOCK, *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **FAST_COMPILE})
