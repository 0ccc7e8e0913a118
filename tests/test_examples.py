"""Every examples/*.py runs from the repo root, exits 0 and prints its key line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py") if p.name != "__init__.py")
KEY_LINES = {
    "build_and_train.py": r"final test accuracy: (0\.9\d*|1\.000)",
    "grad_through_l2_pool.py": r"all-zero window gradient: \[0\. 0\. 0\. 0\.\] \(finite\)"
    r"[\s\S]*check_grads and jit\(grad\), window 3 stride 2: ok",
    "stochastic_pool.py": r"eval value: 2\.50[\s\S]*gradient finite: True"
    r"[\s\S]*registered pooling kinds: .*stochastic",
    "vmap_seeds.py": r"matches lane 2[\s\S]*distinct final losses: 4 of 4",
}


@pytest.fixture(scope="module")
def runs():
    """Start every example at once; each test waits for its own."""
    procs = {name: subprocess.Popen([sys.executable, f"examples/{name}"], cwd=ROOT, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in EXAMPLES}  # fmt: skip
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_every_example_has_a_key_line():
    assert EXAMPLES and set(EXAMPLES) == set(KEY_LINES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(runs, name):
    out, err = runs[name].communicate(timeout=600)
    assert runs[name].returncode == 0, err[-3000:]
    assert re.search(KEY_LINES[name], out), out[-3000:]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_short_with_notebook_cells(name):
    text = (ROOT / "examples" / name).read_text()
    assert len(text.splitlines()) < 80
    assert name == "stochastic_pool.py" or "# %%" in text
