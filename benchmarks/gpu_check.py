"""`make gpu-check`: check an accelerator install and print its figures as one JSON line.

On a machine where JAX sees a GPU or TPU: runs the `gpu`-marked tests (tests/test_gpu.py), the
time-to-99% preset (`experiment=fast`) and one epoch of Nielsen's row 2 (conv 20 + FC100, batch
10, 3 seeds), then prints one JSON line of figures and appends it to outputs/gpu_check.jsonl (a
row for docs/benchmarks.md). Where JAX sees only a CPU it says so in one line and exits 0.

    uv run python benchmarks/gpu_check.py [--skip-runs]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "outputs" / "gpu_check.jsonl"
ROW = "nielsen/row2"


def run_cli(overrides: list[str], run_dir: Path) -> dict:
    """Run experiments.train with `overrides` into `run_dir`; its metrics.json plus wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "experiments.train", *overrides, "train.progress=false",
         f"hydra.run.dir={run_dir}"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"gpu-check: {' '.join(overrides)} failed: {done.stderr.strip()[-500:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"wall_s": round(wall, 2), "test_acc": metrics["test_acc"],
            "compile_s": round(metrics["compile_seconds"], 2),
            "train_s": round(metrics["train_seconds"], 2),
            "images_per_s": round(metrics["images_per_sec"], 1)}


def gpu_tests() -> dict:
    """Run the gpu-marked tests; their outcome and the tail of pytest's report."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_gpu.py", "-m", "gpu", "-n", "0",
         "-p", "no:randomly", "-q", "-rs", "--durations=0"], cwd=ROOT, capture_output=True,
        text=True)
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-2000:], file=sys.stderr)
    return {"ok": done.returncode == 0, "summary": summary.strip("= ")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-runs", action="store_true",
                        help="only the gpu-marked tests (no time-to-99%% or Nielsen-row run)")
    args = parser.parse_args()
    import jax

    backend = jax.default_backend()
    if backend == "cpu":
        kinds = sorted({d.device_kind for d in jax.devices()})
        print(f"gpu-check: JAX sees no GPU or TPU here (backend cpu: {', '.join(kinds)}); "
              "nothing to check on this machine")
        return 0
    figures = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "backend": backend,
        "device": jax.devices()[0].device_kind,
        "devices": jax.device_count(),
        "jax": jax.__version__,
        "preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true"),
        "gpu_tests": gpu_tests(),
    }
    if not args.skip_runs:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            figures["time_to_99"] = run_cli(["experiment=fast"], Path(tmp) / "fast")
            figures[f"{ROW}_one_epoch"] = run_cli([f"experiment={ROW}", "train.epochs=1"],
                                                  Path(tmp) / "row")
    line = json.dumps(figures)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "a") as f:
        f.write(line + "\n")
    print(line)
    return 0 if figures["gpu_tests"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
