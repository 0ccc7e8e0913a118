"""python -m experiments.reproduce TARGET --runs DIR: rerun a published result and rewrite its docs.

The targets are read from the experiment files (`conf/experiment/**.yaml`, and those on a
`hydra.searchpath=[file://DIR]` override) with a `# reproduce: RESULT ...` line
(`experiments/reproduce/targets.py`): TARGET is a RESULT (nielsen, ablation_pooling,
ablation_stride, ablation_dropout, cnn_vs_fc, ...) or all, or one marked experiment's own name,
such as one Nielsen row, nielsen/row1 .. nielsen/row9 (rows 8 and 9 are one step: five row-8
nets, one per job; row 9 is their vote), or a comma-separated list of these
(`nielsen/row7,ablation_dropout`: their steps together, so that `--lanes` plans all of them at
once). A new experiment file with such a line is a new target: no code changes.
Each step runs its documented training
command (`python -m experiments.train ...`) as a subprocess into DIR, always with
`train.resume=auto`: a run that finished with the config the step runs now (config.json; runtime
keys aside) is skipped, an unfinished run of that config continues from its last checkpoint, and a
run dir holding another config's run (an edited experiment file, another --budget) is refused with a
one-line error: add the override `train.resume=false` to start it over, or choose another DIR. A
sweep relaunched into the same sweep dir skips its finished jobs of the same config; a job dir left
holding another config's run fails the step. Then the tables and figures (`experiments/table.py`) or
Nielsen's table (`experiments/nielsen_table.py`) are written into `--out`: by default docs/results
with the full budget, DIR/results with any other (a smoke test never overwrites the published
tables). The records of every finished run (config, metrics, per-epoch lines, test errors; no
checkpoints) are kept in OUT/runs after each step, mirroring DIR (docs/results/runs: committed
with the tables, which regenerate from it), and restored from there into a DIR that lacks them
before anything trains, each that finished with the config the step runs there now: a finished run
is not trained again, on this machine or on another. Before each step the expected wall time still
to train is printed, from the kept records' own `seconds` (docs/results/runs, with the machine
their provenance names): a run's own record, scaled by images x FLOPs (`job_cost`) when its config
differs (another budget); else the records of its sweep or row, scaled the same way; else, marked
rough, those of every kept result; unknown without any record. Runs to be restored count nothing.

  --dry-run        print the commands, the runs "restored from records" and the expected times
                   (a sweep's jobs as its launcher runs them, "basic job 0: pooling=max: ...":
                   numbered, with the overrides the sweep varies, where each stands and its
                   expected time; with joblib also the launch's expected wall time, N jobs at
                   once); run and write nothing
  --status         print where each run of the target (each sweep job, by number) stands in
                   DIR: restored from records (kept in OUT/runs, not yet in DIR), training (and
                   which process), finished, diverged, holding another config's run, stopped
                   after E of N epochs, failed, not started; and the expected time left; run and
                   write nothing
  --budget tiny    a few images, one epoch (a smoke test of the whole pipeline; docs go to
                   DIR/results unless --out is given)
  --out DIR        where the docs go (default: docs/results, or DIR/results with --budget tiny)
  --keep           copy the records of the target's finished runs in DIR to OUT/runs now (while
                   others still train, say); run nothing (not with --dry-run or --status)
  --launcher L     how a sweep's jobs run (experiments/reproduce/run.py):
                   basic (the default): one `train -m`, its jobs one after another;
                   lanes (the default with --lanes N > 1): every job a run of its own in one of
                   N processes side by side, each pinned to its own CPU core (the command
                   line's hydra.* settings and the loggers' sweep group kept; the most time left
                   first, each to the least loaded lane, a finished run weighing nothing; each
                   job's records kept as it finishes; the docs written at the end); on a small
                   CPU at minibatch 10 two one-core processes train 1.3-1.75x the images/s of
                   one two-core process (docs/benchmarks.md);
                   joblib: one `train -m ... hydra/launcher=joblib hydra.launcher.n_jobs=N`
                   per sweep, each job one-threaded;
                   slurm: one `train -m ... hydra/launcher=slurm` per sweep
                   (conf/hydra/launcher/slurm.yaml; hydra.launcher.* overrides set its options).
                   A single run (Nielsen's rows 1-5) is one process under basic, joblib, slurm.
  --lanes N        jobs side by side: the lanes, or joblib's n_jobs (default with --launcher
                   lanes or joblib: every CPU core this process may use)
  OVERRIDE ...     extra Hydra overrides for every training command
Run it at low priority on a shared machine: `nice -n 10 python -m experiments.reproduce ...`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnn_jax.cpus import usable_cores
from experiments.reproduce import plan, publish
from experiments.reproduce.plan import BUDGETS, KEPT_RUNS, steps_of
from experiments.reproduce.run import LAUNCHERS, launcher_missing, reproduce
from experiments.reproduce.status import status_lines


def checked_launcher(launcher: str | None, lanes: int | None) -> tuple[str, int]:
    """The launcher and its jobs at once, or a one-line ValueError naming the bad value."""
    launcher = launcher or ("lanes" if (lanes or 1) > 1 else "basic")
    if launcher not in LAUNCHERS:
        raise ValueError(f"--launcher {launcher!r} is not one of {', '.join(LAUNCHERS)}")
    if lanes is not None and launcher in ("basic", "slurm") and lanes != 1:
        raise ValueError(f"--lanes {lanes} is for the lanes and joblib launchers, not "
                         f"{launcher}" + (" (hydra.launcher.array_parallelism sets how many "
                                          "jobs run at once)" if launcher == "slurm" else ""))
    lanes = lanes if lanes is not None else (usable_cores() if launcher in ("lanes", "joblib")
                                             else 1)
    if not 1 <= lanes <= usable_cores() and launcher != "slurm":
        raise ValueError(f"--lanes {lanes} must be between 1 and the "
                         f"{usable_cores()} CPU cores this process may use")
    if launcher == "lanes" and lanes > 1 and not hasattr(os, "sched_setaffinity"):
        raise ValueError(f"--lanes {lanes} must be between 1 and the {usable_cores()} CPU cores "
                         "this process may use (more than 1 needs os.sched_setaffinity, Linux)")
    missing = launcher_missing(launcher)
    if missing:
        raise ValueError(missing)
    return launcher, lanes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.reproduce",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("target", help=f"one of {plan.catalog().describe()} (the experiment "
                        "files marked `# reproduce:`), or a comma-separated list of them")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    parser.add_argument("--runs", type=Path, required=True, help="run and sweep dirs go here")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results dir (default: {plan.DOCS} with --budget full, "
                             "RUNS/results with any other budget)")
    parser.add_argument("--budget", default="full", help=f"one of {', '.join(BUDGETS)}")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--status", action="store_true",
                        help="print where each run stands in RUNS and the time left; run nothing")
    parser.add_argument("--keep", action="store_true",
                        help="copy the records of the finished runs in RUNS to OUT/runs now; "
                             "run nothing")
    parser.add_argument("--launcher", default=None,
                        help=f"how a sweep's jobs run: one of {', '.join(LAUNCHERS)} (default: "
                             "basic, lanes with --lanes N > 1)")
    parser.add_argument("--lanes", type=int, default=None,
                        help="jobs side by side: one-core processes each pinned to a core "
                             "(lanes), or joblib's n_jobs (default with --launcher lanes or "
                             "joblib: every usable core)")
    args = parser.parse_intermixed_args(argv)
    try:
        if args.budget not in BUDGETS:
            raise ValueError(f"--budget {args.budget!r} is not one of {', '.join(BUDGETS)}")
        launcher, lanes = checked_launcher(args.launcher, args.lanes)
        if args.keep and (args.dry_run or args.status):
            raise ValueError("--keep copies records: use it without --dry-run and --status")
        extra = (*BUDGETS[args.budget], *args.overrides)
        out = args.out
        if args.status:
            kept = (out or (plan.DOCS if args.budget == "full" else args.runs / "results")
                    ) / KEPT_RUNS
            for _, steps in steps_of(args.target, extra):
                for step in steps:
                    print("\n".join(status_lines(step, args.runs.absolute(), extra,
                                                 kept.absolute())), flush=True)
            return 0
        if out is None and args.budget != "full":
            out = args.runs / "results"
            print(f"--budget {args.budget}: the docs go to {out.absolute()}, not {plan.DOCS} "
                  "(--out sets where)", flush=True)
        if args.keep:
            for _, steps in steps_of(args.target, extra):
                for step in steps:
                    publish.keep_step(step, args.runs.absolute(),
                                      (out or plan.DOCS).absolute() / KEPT_RUNS)
            return 0
        reproduce(args.target, args.runs.absolute(), (out or plan.DOCS).absolute(), extra,
                  args.dry_run, lanes, launcher)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
