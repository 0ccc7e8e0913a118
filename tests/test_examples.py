"""Every examples/*.py and the Python in docs/api.md run from the repo root, with only the core
install's modules importable (tests/core_only.py), and print their key lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from core_only import blocker, extra_modules

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py") if p.name != "__init__.py")
FAST_COMPILE = "--xla_backend_optimization_level=0"  # tiny programs: LLVM -O0 halves compile time
KEY_LINES = {
    "build_and_train.py": r"final test accuracy: (0\.9\d*|1\.000)",
    "own_model.py": r"seed 0: test 0\.\d+[\s\S]*batch_stats per seed: 2 sets",
    "grad_through_l2_pool.py": r"all-zero window gradient: \[0\. 0\. 0\. 0\.\] \(finite\)"
    r"[\s\S]*check_grads and jit\(grad\), window 3 stride 2: ok",
    "stochastic_pool.py": r"eval value: 2\.50[\s\S]*"
    r"train=False: value 0\.0, gradient finite: True\n"
    r".*train=True: value 0\.0, gradient finite: True"
    r"[\s\S]*registered pooling kinds: .*stochastic",
    "vmap_seeds.py": r"matches lane 2[\s\S]*distinct final losses: 4 of 4",
}
DOCS = "docs/api.md"
DOCS_KEY_LINE = r"total .*\nloss after one step: \d+\.\d{3}"


def docs_python() -> str:
    """The ```python blocks of docs/api.md, in order, as one program."""
    text = (ROOT / DOCS).read_text()
    return "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))


@pytest.fixture(scope="module")
def runs():
    """Start every example, and the docs' code, at once; each test waits for its own."""
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}"}
    core_only = blocker(extra_modules())
    commands = {name: ["-c", f"{core_only}\nimport runpy, sys\nsys.argv = ['examples/{name}']\n"
                             f"runpy.run_path('examples/{name}', run_name='__main__')"]
                for name in EXAMPLES}
    commands[DOCS] = ["-c", core_only + docs_python()]
    procs = {name: subprocess.Popen([sys.executable, *args], cwd=ROOT, text=True, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, args in commands.items()}  # fmt: skip
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def finish(proc: subprocess.Popen) -> str:
    """Wait for `proc`; its stdout, after checking it exited 0."""
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def test_every_example_has_a_key_line():
    assert EXAMPLES and set(EXAMPLES) == set(KEY_LINES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(runs, name):
    out = finish(runs[name])
    assert re.search(KEY_LINES[name], out), out[-3000:]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_short_with_notebook_cells(name):
    text = (ROOT / "examples" / name).read_text()
    assert len(text.splitlines()) < 80
    assert name == "stochastic_pool.py" or "# %%" in text


def test_docs_api_code_runs(runs):
    first = docs_python().split("\nimport jax\nimport optax")[0]
    assert len(first.strip().splitlines()) <= 16  # the example at the top stays short
    out = finish(runs[DOCS])
    assert re.search(DOCS_KEY_LINE, out), out[-3000:]
