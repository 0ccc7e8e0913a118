"""Run Python as if only the core install were present: the extras' modules cannot be imported.

The extras' top-level modules come from pyproject.toml (the optional dependencies, except the
accelerator ones, which only swap JAX's backend) and the installed distributions' file lists,
so a new extra is blocked without editing this file.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCELERATOR_EXTRAS = {"cuda12", "tpu"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def extra_distributions() -> set[str]:
    """Distributions named by the non-accelerator extras (the package's own extras excluded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_canonical(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0])
            for r in project["dependencies"]}
    names = set()
    for extra, requirements in project["optional-dependencies"].items():
        if extra in ACCELERATOR_EXTRAS:
            continue
        for requirement in requirements:
            name = _canonical(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
            if name != _canonical(project["name"]) and name not in core:
                names.add(name)
    return names


def extra_modules() -> set[str]:
    """Top-level module names the extras' distributions install."""
    owners = importlib.metadata.packages_distributions()
    dists = extra_distributions()
    modules = {module for module, owner in owners.items()
               if any(_canonical(d) in dists for d in owner)}
    modules.discard("")
    return modules


def blocker(modules: set[str]) -> str:
    """Python source that makes importing any of `modules` (or their submodules) fail."""
    return f"""
import importlib.abc, sys
_BLOCKED = {sorted(modules)!r}
class _CoreOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (an extra)", name=name)
        return None
sys.meta_path.insert(0, _CoreOnly())
"""
