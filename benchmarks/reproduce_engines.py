"""Wall time of one set of sweep jobs under reproduce's engines: `--lanes 2` vs joblib.

Trains the same jobs (by default the 4 jobs of ablation_stride with pooling=max,none, one seed,
one epoch of 10,000 images) with each engine in turn, each run
`python -m experiments.reproduce TARGET --runs FRESH_DIR --out FRESH_DIR ...` (nothing to skip
or restore), alternating which engine goes first from round to round so machine noise and a
warming compile cache hit both alike; an untimed warm-up run (the first engine) fills the
compile cache first. Prints each run's wall seconds, each engine's median and the ratio, with
the CPU model, the usable cores and the load average before and after; `--json PATH` also
writes them.
  python benchmarks/reproduce_engines.py --rounds 2
Run it on quiet cores: other processes on the machine change the figures more than the engines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnn_jax.atomic import write_atomic  # noqa: E402
from cnn_jax.cpus import cpu_model, usable_cores  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "mnist"


def engines(jobs: int) -> dict[str, list[str]]:
    """Each engine's reproduce options, `jobs` jobs side by side."""
    return {"lanes": ["--lanes", str(jobs)],
            "joblib": ["--launcher", "joblib", "--lanes", str(jobs)]}


def overrides(args: argparse.Namespace) -> list[str]:
    """The jobs' reduced budget (no checkpoints, no loggers, no progress bars)."""
    return [*args.sweep, f"data.train_limit={args.train_limit}", f"train.epochs={args.epochs}",
            f"train.seeds={args.seeds}", "train.progress=false", "train.checkpoint=false",
            "logger=none", f"data.dir={args.data_dir}"]


def run_once(target: str, options: list[str], extra: list[str], scratch: Path) -> float:
    """One reproduce command into fresh dirs under `scratch`: its wall seconds; exits with its
    output's tail if it fails or a job did not finish."""
    runs = Path(tempfile.mkdtemp(dir=scratch, prefix="runs-"))
    cmd = [sys.executable, "-m", "experiments.reproduce", target, "--runs", str(runs),
           "--out", str(runs / "results"), *options, *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    records = [json.loads(p.read_text()) for p in (runs / target).glob("*/metrics.json")]
    if done.returncode or not records or any(r.get("status") != "ok" for r in records):
        sys.exit(f"{' '.join(cmd)}: exit {done.returncode}, {len(records)} job record(s)\n"
                 f"{(done.stdout + done.stderr)[-2000:]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="ablation_stride")
    p.add_argument("--sweep", nargs="*", default=["pooling=max,none"],
                   help="overrides that choose the jobs (default: 4 of ablation_stride's 6)")
    p.add_argument("--train-limit", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2, help="jobs side by side in each engine")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run")
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.jobs < 1:
        p.error(f"--rounds {args.rounds} and --jobs {args.jobs} must be at least 1")
    extra, named = overrides(args), engines(args.jobs)
    order = list(named)
    print(f"cpu: {cpu_model()}, {usable_cores()} usable cores; load average "
          f"{os.getloadavg()[0]:.2f} at the start", flush=True)
    print(f"jobs: {args.target} {' '.join(extra)}; {args.jobs} side by side", flush=True)
    walls: dict[str, list[float]] = {name: [] for name in named}
    with tempfile.TemporaryDirectory(prefix="reproduce-engines-") as scratch:
        if not args.no_warmup:
            seconds = run_once(args.target, named[order[0]], extra, Path(scratch))
            print(f"warm-up ({order[0]}, not counted): {seconds:.1f} s", flush=True)
        for n in range(args.rounds):
            turn = order if n % 2 == 0 else order[::-1]
            for name in turn:
                walls[name].append(run_once(args.target, named[name], extra, Path(scratch)))
            print(f"round {n + 1}: " + ", ".join(f"{name} {walls[name][-1]:.1f} s"
                                                 for name in turn), flush=True)
    medians = {name: statistics.median(w) for name, w in walls.items()}
    for name, w in walls.items():
        print(f"{name}: {', '.join(f'{s:.1f}' for s in w)} s (median {medians[name]:.1f})")
    ratio = medians["joblib"] / medians["lanes"]
    print(f"joblib / lanes: {ratio:.3f} (median wall seconds; below 1: joblib is faster); load "
          f"average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        write_atomic(args.json, json.dumps({
            "cpu": cpu_model(), "usable_cores": usable_cores(), "target": args.target,
            "overrides": extra, "jobs": args.jobs, "wall_seconds": walls, "medians": medians,
            "joblib_over_lanes": ratio}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
