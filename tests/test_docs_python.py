"""Every Python block in README.md and docs/*.md runs on its own, as a reader would paste it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks():
    return [pytest.param(code, id=f"{path.name}:{n}")
            for path in DOCS for n, code in enumerate(BLOCK.findall(path.read_text()))]


def test_the_docs_have_python_blocks():
    assert len(blocks()) >= 4  # the parametrized test below is never empty


@pytest.mark.parametrize("code", blocks())
def test_a_python_block_runs_on_its_own(code, mnist_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CNN_JAX_MNIST_DIR": str(mnist_dir)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
