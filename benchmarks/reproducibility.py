"""What is bit-identical between runs of one config, and what is not.

Trains one small config several times, each run a `python -m experiments.train` subprocess in a
run dir of its own (the command a reader runs), and compares pairs of runs:
  - the same command twice, on the same two cores;
  - the compile cache off vs on (the second of two runs that share a fresh cache, which loads
    its programs from it);
  - one core vs two (`taskset -c 0` vs `taskset -c 0,1`);
  - resumed vs uninterrupted (SIGTERM once epoch 1 is recorded, then the same command again);
  - for each `--flags` value (XLA_FLAGS): one core vs two under it, and it vs no flags.
For each pair: the largest absolute difference in the final parameters (every seed's latest
state), the number of test images the two runs' final nets predict differently (all seeds; both
runs' predictions computed in this process, so a difference comes from the parameters), and
whether the per-epoch records (train loss, validation and test accuracy of every seed) are
identical. Then each run's epoch seconds and, per flag, their ratio to no flags on the same cores.
Children run at `nice -n 5`, XLA_FLAGS set to the case's flags only (empty by default).

  python benchmarks/reproducibility.py                  # row 2, 2,000 images, 2 epochs, 2 seeds
  python benchmarks/reproducibility.py --markdown docs/results/reproducibility.md
  python benchmarks/reproducibility.py --flags "" experiment=fast train.epochs=2
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OVERRIDES = ("experiment=nielsen/row2", "data.train_limit=2000", "train.epochs=2",
                     "train.seeds=2")
DEFAULT_FLAGS = ("--xla_cpu_multi_thread_eigen=false",)
TIMING_KEYS = frozenset({"seconds"})  # per-epoch fields that are timings, not results


# ---- the comparison (pure) ---------------------------------------------------------------------

def max_abs_diff(a: Any, b: Any) -> float:
    """The largest |a - b| over every leaf of two parameter trees of the same structure and
    shapes (0.0: bit-identical; NaN in both at the same place counts as equal, elsewhere inf).
    ValueError when the structures or a leaf's shape differ."""
    import jax

    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    if tree_a != tree_b:
        raise ValueError(f"parameter trees differ: {tree_a} vs {tree_b}")
    worst = 0.0
    for x, y in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            raise ValueError(f"leaf shapes differ: {x.shape} vs {y.shape}")
        both_nan = np.isnan(x) & np.isnan(y)
        diff = np.where(both_nan, 0.0, np.abs(x - y))
        if diff.size:
            worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max()))
    return worst


def differing_predictions(a: np.ndarray, b: np.ndarray) -> int:
    """How many entries of two prediction arrays ([seeds, images] classes) differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"prediction shapes differ: {a.shape} vs {b.shape}")
    return int((a != b).sum())


def results_of(epochs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch records without their timings."""
    return [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in epochs]


def epochs_identical(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two runs' per-epoch records are equal in every value but the timings."""
    return results_of(a) == results_of(b)


@dataclass(frozen=True)
class Record:
    """What a finished run left: final params, test predictions of them, per-epoch records."""

    params: Any
    predictions: np.ndarray
    epochs: list[dict[str, Any]]


@dataclass(frozen=True)
class Row:
    pair: str
    a: str
    b: str
    max_param_diff: float
    test_images_differ: int
    test_images: int
    epochs_identical: bool


def compare(pair: str, a_name: str, a: Record, b_name: str, b: Record) -> Row:
    """The row of one pair of runs."""
    return Row(pair, a_name, b_name, max_abs_diff(a.params, b.params),
               differing_predictions(a.predictions, b.predictions), int(a.predictions.size),
               epochs_identical(a.epochs, b.epochs))


def format_diff(x: float) -> str:
    return "0 (bit-identical)" if x == 0.0 else f"{x:.2g}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table."""
    lines = ["| pair | runs | largest parameter difference | test predictions that differ "
             "| per-epoch losses and accuracies identical |",
             "|---|---|---|---|---|"]
    lines += [f"| {r.pair} | {r.a} / {r.b} | {format_diff(r.max_param_diff)} | "
              f"{r.test_images_differ} of {r.test_images} | "
              f"{'yes' if r.epochs_identical else 'no'} |" for r in rows]
    return "\n".join(lines) + "\n"


def epoch_seconds(epochs: Sequence[Mapping[str, Any]]) -> list[float]:
    return [float(e["seconds"]) for e in epochs]


# ---- the runs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One training subprocess: its cores, XLA_FLAGS, compile cache, and whether it is stopped
    after epoch 1 and resumed."""

    name: str
    cores: str
    flags: str = ""
    cache: str | None = None  # a compile-cache dir, or None (train.compile_cache=null)
    interrupt: bool = False
    one_thread_pool: bool = False  # JAX's CPU client created while on one core (ONE_THREAD_POOL)


# Runs a module as `python -m` does, after creating JAX's CPU client while the process may use
# only its first core: XLA:CPU sizes its intra-op thread pool from the affinity mask then, so the
# pool has one thread; the mask is restored before the module runs (seeds still run at once).
ONE_THREAD_POOL = ("import os, runpy, sys; cores = os.sched_getaffinity(0); "
                   "os.sched_setaffinity(0, {min(cores)}); import jax; jax.devices(); "
                   "os.sched_setaffinity(0, cores); sys.argv = sys.argv[1:]; "
                   "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def command(case: Case, run_dir: Path, overrides: Sequence[str]) -> list[str]:
    cache = "null" if case.cache is None else case.cache
    start = ["-c", ONE_THREAD_POOL] if case.one_thread_pool else ["-m"]
    return ["nice", "-n", "5", "taskset", "-c", case.cores, sys.executable, *start,
            "experiments.train", f"hydra.run.dir={run_dir}", *overrides,
            f"train.compile_cache={cache}", "train.progress=false", "logger=none"]


def child_env(flags: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if flags:
        env["XLA_FLAGS"] = flags
    return env


def _epochs_recorded(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def last_line(text: str) -> str:
    """A child's last non-blank stderr line (its `error: ...`, or a traceback's last line)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def train(case: Case, run_dir: Path, overrides: Sequence[str]) -> None:
    """Run `case` to the end (if it interrupts: stopped by SIGTERM once epoch 1 is recorded,
    then the same command again continues it). RuntimeError naming the case when a run fails."""
    cmd, env = command(case, run_dir, overrides), child_env(case.flags)
    if case.interrupt:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        while proc.poll() is None and _epochs_recorded(run_dir) < 1:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate()
        if proc.returncode != 128 + signal.SIGTERM:
            raise RuntimeError(f"{case.name}: expected a stop after epoch 1 (exit 143), got "
                               f"exit {proc.returncode} (too few steps left to stop it?): "
                               f"{last_line(err)}")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{case.name}: exit {done.returncode}: {last_line(done.stderr)}")


def load_record(run_dir: Path, predict: Any) -> Record:
    from cnn_jax.results import records
    from cnn_jax.results.rundir import CHECKPOINTS
    from cnn_jax.train import checkpoint

    params = checkpoint.load_checkpoint(run_dir / CHECKPOINTS)["state"]["params"]
    return Record(params, predict(params), records.read_epochs(run_dir))


def cases_for(flags: Sequence[str], cache_dir: Path, two: str, one: str) -> list[Case]:
    cache = str(cache_dir)
    cases = [Case("2 cores", two), Case("1 core", one),
             Case("2 cores, 1-thread pool", two, one_thread_pool=True), Case("2 cores again", two),
             Case("cache cold", two, cache=cache), Case("cache loaded", two, cache=cache),
             Case("resumed", two, interrupt=True)]
    for f in flags:
        cases += [Case(f"2 cores, {f}", two, flags=f), Case(f"1 core, {f}", one, flags=f)]
    return cases


def pairs_for(flags: Sequence[str]) -> list[tuple[str, str, str]]:
    pairs = [("same command twice, 2 cores", "2 cores", "2 cores again"),
             ("compile cache off vs loaded from cache", "2 cores", "cache loaded"),
             ("2 cores vs 1 core", "2 cores", "1 core"),
             ("1 core vs 2 cores with a 1-thread pool", "1 core", "2 cores, 1-thread pool"),
             ("uninterrupted vs stopped after epoch 1 and resumed", "2 cores", "resumed")]
    for f in flags:
        pairs += [(f"2 cores vs 1 core, XLA_FLAGS={f}", f"2 cores, {f}", f"1 core, {f}"),
                  (f"no flags vs XLA_FLAGS={f}, 2 cores", "2 cores", f"2 cores, {f}")]
    return pairs


def timing_lines(epochs: Mapping[str, list[float]], flags: Sequence[str]) -> list[str]:
    """Each run's epoch seconds, and per flag its median epoch time over no flags' (same cores)."""
    lines = [f"{name}: epoch seconds {', '.join(f'{s:.2f}' for s in secs)}"
             for name, secs in epochs.items()]
    base = {"2 cores": epochs["2 cores"] + epochs["2 cores again"], "1 core": epochs["1 core"]}
    for name in ("1 core", "2 cores, 1-thread pool"):
        ratio = statistics.median(epochs[name]) / statistics.median(base["2 cores"])
        lines.append(f"{name} takes {ratio:.2f}x the epoch time of 2 cores")
    for f in flags:
        for cores, secs in base.items():
            ratio = statistics.median(epochs[f"{cores}, {f}"]) / statistics.median(secs)
            lines.append(f"{cores}: XLA_FLAGS={f} takes {ratio:.2f}x the epoch time of no flags")
    return lines


def two_cores() -> tuple[str, str]:
    """taskset lists for two cores and one (the first two this process may use)."""
    from cnn_jax.cpus import usable_core_ids

    ids = usable_core_ids()
    if len(ids) < 2:
        raise SystemExit(f"error: {len(ids)} usable CPU core(s); the comparison needs 2")
    return f"{ids[0]},{ids[1]}", str(ids[0])


def predictor(overrides: Sequence[str]) -> Any:
    """params -> [seeds, test images] predicted classes of the config's model."""
    from cnn_jax.data import load_splits
    from cnn_jax.models import ConvNet
    from cnn_jax.train.ensemble import seed_predictions
    from experiments.compose import compose_config

    cfg = compose_config(*overrides)
    test_x = load_splits(cfg.data).test_x
    model = ConvNet(cfg.model)
    return lambda params: seed_predictions(model, params, test_x)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", default=list(DEFAULT_OVERRIDES),
                        help="the config's overrides (default: %(default)s)")
    parser.add_argument("--flags", action="append", default=None,
                        help="an XLA_FLAGS value to test (repeatable; '' for none; default: "
                             f"{' '.join(DEFAULT_FLAGS)})")
    parser.add_argument("--markdown", type=Path, help="also write the table here (markdown)")
    parser.add_argument("--keep", type=Path, help="keep the run dirs here (default: a temp dir)")
    a = parser.parse_args(argv)
    flags = [f for f in (DEFAULT_FLAGS if a.flags is None else a.flags) if f]
    sys.path.insert(0, str(ROOT))
    two, one = two_cores()
    work = Path(tempfile.mkdtemp(prefix="reproducibility-")) if a.keep is None else a.keep
    if a.keep is not None and any(a.keep.iterdir() if a.keep.exists() else []):
        raise SystemExit(f"error: --keep {a.keep} is not empty; name an empty or new dir")
    try:
        cases = cases_for(flags, work / "compile_cache", two, one)
        dirs = {c.name: work / f"run{i}" for i, c in enumerate(cases)}
        for c in cases:
            start = time.perf_counter()
            try:
                train(c, dirs[c.name], a.overrides)
            except RuntimeError as err:  # a child's failure, in one line
                from cnn_jax.errors import first_line

                raise SystemExit(f"error: {first_line(err)}") from None
            print(f"trained {c.name} ({time.perf_counter() - start:.0f} s)", flush=True)
        predict = predictor(a.overrides)
        recs = {c.name: load_record(dirs[c.name], predict) for c in cases}
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    rows = [compare(p, x, recs[x], y, recs[y]) for p, x, y in pairs_for(flags)]
    table = markdown_table(rows)
    timings = timing_lines({n: epoch_seconds(r.epochs) for n, r in recs.items()}, flags)
    print(f"config: {' '.join(a.overrides)}")
    print(table)
    print("\n".join(timings))
    if a.markdown is not None:
        from cnn_jax.atomic import write_atomic

        write_atomic(a.markdown, f"`{' '.join(a.overrides)}`\n\n{table}\n"
                     + "".join(f"- {t}\n" for t in timings))


if __name__ == "__main__":
    main()
