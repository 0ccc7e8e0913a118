"""Time to 99% MNIST test accuracy from the command line, side by side: the `experiment=fast`
preset, the preset it replaced (`experiment=fast_v1`) and the PyTorch recipe.

Alternates the three commands `--rounds` times (after one warm-up round each, so every compile
cache and the OS's file cache are warm), each timed from outside the process, from command start
to exit, and prints a Markdown table of medians with the CPU model:
- `uv run python -m experiments.train experiment=fast` (and the old preset), each into a fresh
  run dir (`hydra.run.dir`), its `ok: test_acc=...` line parsed for the accuracy;
- `benchmarks/torch_baseline.py --recipe fast` in its own venv (`.venv-torch`,
  benchmarks/README.md), which trains until the test accuracy reaches 99%.
Run it on quiet cores (pause background jobs): the figures are wall times.
  python benchmarks/fast_vs_torch.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TORCH_PYTHON = ROOT / ".venv-torch" / "bin" / "python"
RESULT = re.compile(r"^(ok|diverged|failed): test_acc=([0-9.]+)%")


def timed(cmd: list[str]) -> tuple[float, str]:
    """(seconds from start to exit, the command's stdout and stderr)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds, done.stdout + done.stderr


def run_preset(name: str, run_dir: Path) -> tuple[float, float | None]:
    """(wall seconds, test accuracy %) of `python -m experiments.train experiment=NAME`."""
    seconds, out = timed(["uv", "run", "python", "-m", "experiments.train",
                          f"experiment={name}", f"hydra.run.dir={run_dir}"])
    found = [RESULT.match(line) for line in out.splitlines()]
    accs = [float(m.group(2)) for m in found if m]
    return seconds, accs[-1] if accs else None


def run_torch(python: Path) -> tuple[float, float | None]:
    """(wall seconds, test accuracy %) of the PyTorch recipe."""
    seconds, out = timed([str(python), str(HERE / "torch_baseline.py"), "--recipe", "fast"])
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return seconds, 100 * lines[-1]["test_acc"] if lines else None


def cpu_model() -> str:
    from cnn_jax.cpus import cpu_model as model

    return model()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--torch-python", type=Path, default=TORCH_PYTHON,
                   help="python of a venv with torch==2.13.0 (benchmarks/README.md)")
    p.add_argument("--presets", nargs="+", default=["fast", "fast_v1"])
    a = p.parse_args(argv)
    if not a.torch_python.exists():
        print(f"error: --torch-python={a.torch_python} does not exist; see benchmarks/README.md",
              file=sys.stderr)
        return 2
    names = [*a.presets, "pytorch"]
    results: dict[str, list[tuple[float, float | None]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(-1, a.rounds):  # round -1 warms the caches, not counted
            for name in names:
                got = (run_torch(a.torch_python) if name == "pytorch"
                       else run_preset(name, Path(scratch) / f"{name}-{round_}"))
                if round_ >= 0:
                    results[name].append(got)
                print(f"round {round_}: {name} {got[0]:.2f} s, test {got[1]}%", file=sys.stderr)
    print(f"CPU: {cpu_model()}; {a.rounds} rounds, alternated, after a warm-up round; wall "
          "seconds from command start to exit")
    print("| command | median s | each round s | test acc % each round |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        command = ("torch_baseline.py --recipe fast" if name == "pytorch"
                   else f"experiments.train experiment={name}")
        seconds = [s for s, _ in rows]
        print(f"| `{command}` | {statistics.median(seconds):.2f} | "
              f"{' / '.join(f'{s:.2f}' for s in seconds)} | "
              f"{' / '.join('—' if acc is None else f'{acc:.2f}' for _, acc in rows)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
