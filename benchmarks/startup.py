"""How fast the command answers: a config error, --help, and command start to first training step.

For each checkout (this one, and `--before DIR`, e.g. a `git worktree` of an older commit with
its own `.venv`), alternates the three commands `--rounds` times and prints a Markdown table of
medians (seconds from command start, measured from outside):
- error: `python -m experiments.train pooling=foo` until it exits;
- help: `python -m experiments.train --help` until it exits;
- first step: a tiny run (warm compile cache) until its `compiled in` line, i.e. just before its
  first training step, and until it exits.
  python benchmarks/startup.py --before ../old-checkout --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=fc30", "data.train_limit=1000", "train.epochs=1", "logger=none",
        "train.progress=false"]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def timed(repo: Path, args: list[str], marker: str | None = None) -> tuple[float, float | None]:
    """(seconds until exit, seconds until a stdout/stderr line containing `marker`)."""
    python = repo / ".venv" / "bin" / "python"
    start = time.perf_counter()
    proc = subprocess.Popen([str(python), "-m", "experiments.train", *args], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = None
    for line in proc.stdout:
        if marker and seen is None and marker in line:
            seen = time.perf_counter() - start
    proc.wait()
    return time.perf_counter() - start, seen


def measure(repo: Path, scratch: Path, round_: int) -> dict[str, float | None]:
    run_dir = scratch / f"{repo.name}-{round_}"
    error, _ = timed(repo, ["pooling=foo"])
    help_, _ = timed(repo, ["--help"])
    total, first = timed(repo, [*TINY, f"hydra.run.dir={run_dir}", "train.resume=false"],
                         "compiled in")
    return {"error": error, "help": help_, "first step": first, "whole tiny run": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="another checkout to compare")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    repos = [r.resolve() for r in ([args.before] if args.before else []) + [ROOT]]
    results: dict[Path, list[dict]] = {r: [] for r in repos}
    with tempfile.TemporaryDirectory() as scratch:
        for repo in repos:  # warm the compile cache and the OS's file cache
            measure(repo, Path(scratch), -1)
        for i in range(args.rounds):
            for repo in repos:
                results[repo].append(measure(repo, Path(scratch), i))
    keys = list(results[ROOT.resolve()][0])
    print(f"CPU: {cpu_model()}; {args.rounds} rounds, alternated; medians in seconds")
    print("| checkout | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for repo, rows in results.items():
        cells = []
        for k in keys:
            values = [r[k] for r in rows if r[k] is not None]
            cells.append(f"{statistics.median(values):.2f}" if values else "—")
        print(f"| {repo} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
