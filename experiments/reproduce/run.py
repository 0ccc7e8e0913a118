"""Running a target's training commands: each step's `python -m experiments.train` as a
subprocess, a sweep's jobs launched by one of LAUNCHERS, with its records kept and its docs
written after.

- basic: a sweep is one `train -m` whose jobs Hydra's basic launcher runs one after another;
- lanes: every job (a sweep's each a run of its own) in one of N processes side by side, each
  pinned to its own CPU core, the most time left first, each to the least loaded lane;
- joblib: a sweep is one `train -m ... hydra/launcher=joblib hydra.launcher.n_jobs=N`, each
  job one-threaded (`train.concurrent_seeds=1`, and XLA:CPU's pool created while its process
  may use one core: `experiments.callbacks.OneThreadPool`);
- slurm: a sweep is one `train -m ... hydra/launcher=slurm` (conf/hydra/launcher/slurm.yaml).

Under every launcher each job resumes into its numbered job dir (`train.resume=auto`): a
finished job skips itself, a stopped one continues from its checkpoint. A single run (Nielsen's
rows 1-5) is one process under basic, joblib and slurm alike.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cnn_jax.cpus import cpu_model, usable_core_ids
from cnn_jax.errors import first_line
from cnn_jax.loggers import SWEEP_GROUP_ENV
from cnn_jax.results import rundir
from cnn_jax.results.records import read_metrics
from experiments.reproduce import publish
from experiments.reproduce.log import log_command, say
from experiments.reproduce.plan import (
    KEPT_RUNS,
    RESTORED,
    ROOT,
    Step,
    composed,
    duration,
    is_finished,
    job_steps,
    plan_runs,
    plan_weight,
    stale_jobs,
    step_config,
    steps_of,
    time_text,
    train_command,
)

LAUNCHERS = ("basic", "lanes", "joblib", "slurm")
ONE_THREAD_POOL = ("+hydra.callbacks.one_thread_pool._target_="
                   "experiments.callbacks.OneThreadPool")


def launcher_overrides(launcher: str, jobs: int) -> tuple[str, ...]:
    """What a sweep's `train -m` adds to run its jobs through a Hydra launcher: joblib with
    `jobs` one-threaded jobs at once, slurm with conf/hydra/launcher/slurm.yaml (the command
    line's hydra.launcher.* settings apply); nothing for basic and lanes."""
    if launcher == "joblib":
        return ("hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}",
                "train.concurrent_seeds=1", ONE_THREAD_POOL)
    if launcher == "slurm":
        return ("hydra/launcher=slurm",)
    return ()


def launcher_missing(launcher: str) -> str | None:
    """The one-line error when the launcher's Hydra plugin is not installed, else None."""
    import importlib.util

    module = {"joblib": "hydra_plugins.hydra_joblib_launcher",
              "slurm": "hydra_plugins.hydra_submitit_launcher"}.get(launcher)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return (f"--launcher {launcher} needs the {module.split('.')[-1].replace('_', '-')} plugin: "
            "uv sync --extra cluster")


def job_environment(step: Step, runs: Path) -> dict[str, str]:
    """The environment of a step's training process: a sweep's job run on its own names its
    sweep dir, the loggers' group as in the sweep (`loggers.sweep_group`); no other step does."""
    env = {k: v for k, v in os.environ.items() if k != SWEEP_GROUP_ENV}
    if step.job is not None:
        env[SWEEP_GROUP_ENV] = str(runs / Path(step.run_dir).parent)
    return env


def pinned(command: list[str], core: int) -> list[str]:
    """`command` run by a Python trampoline that pins itself to `core`, then execs it (the
    affinity is kept across exec): no preexec_fn, which is unsafe in a threaded program."""
    pin = (f"import os, sys; os.sched_setaffinity(0, {{{int(core)}}}); "
           "os.execvp(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", pin, *command]


def step_error(step: Step, exc: Exception) -> RuntimeError:
    """A step's failure as a one-line RuntimeError (a RuntimeError stays as it is)."""
    if isinstance(exc, RuntimeError):
        return exc
    return RuntimeError(f"{step.name} failed: {type(exc).__name__}: {first_line(exc)}")


def run_step_or_raise(step: Step, runs: Path, extra: tuple[str, ...], dry_run: bool,
                      kept: Path | None = None, launch: tuple[str, ...] = ()) -> None:
    """run_step, any exception of it raised as the step's one-line RuntimeError."""
    try:
        run_step(step, runs, extra, dry_run, kept=kept, launch=launch)
    except Exception as exc:  # OSError, subprocess.SubprocessError, ValueError, ...
        error = step_error(step, exc)
        if error is exc:
            raise
        raise error from exc


def launch_wall(seconds: list[float], at_once: int) -> float:
    """The wall seconds of jobs started in their order, each by the first of `at_once` workers
    to be free (as joblib hands them out)."""
    free = [0.0] * at_once
    for s in seconds:
        free[free.index(min(free))] += s
    return max(free)


def job_lines(step: Step, plans: list, launcher: str, at_once: int | None,
              kept: Path | None) -> list[str]:
    """A sweep's jobs as its Hydra launcher runs them: each job's number, the overrides the
    sweep varies, where it stands (restored from the records in `kept`, or its state) and its
    expected time; with `at_once` workers (joblib) and every time known, the launch's expected
    wall time first."""
    todo = [p.left * p.estimate.seconds for p in plans
            if p.left > 0 and p.estimate.seconds is not None]
    lines = [] if at_once is None or len(todo) < sum(p.left > 0 for p in plans) else [
        f"   {launcher}, {at_once} jobs at once: expected {duration(launch_wall(todo, at_once))} "
        "of wall time (in job order, each to the first free worker)"]
    for p in plans:
        name = f"   {launcher} job {p.run_dir.name}: {p.label or step.experiment}"
        if p.state is None:
            lines.append(f"{name}: {RESTORED}: {p.run_dir} (kept in {kept}; not trained again)")
            continue
        seconds = p.estimate.seconds
        left = (f"expected {duration(p.left * seconds)} ({p.estimate.source})"
                if seconds is not None else f"expected time {p.estimate.source}")
        lines.append(f"{name}: {p.state.state}, {p.state.epochs_done}/{p.state.epochs_planned} "
                     f"epochs; " + (left if p.left > 0 else "nothing to train"))
    return lines


def launch_command(step: Step, runs: Path, extra: tuple[str, ...],
                   launch: tuple[str, ...]) -> list[str]:
    """The step's `train_command` with its launcher's overrides (a sweep's only) before the
    sweep dir."""
    argv = train_command(step, runs, extra)
    argv[-1:-1] = launch if step.sweep else ()
    return argv


def run_step(step: Step, runs: Path, extra: tuple[str, ...], dry_run: bool,
             core: int | None = None, kept: Path | None = None,
             launch: tuple[str, ...] = ()) -> None:
    """Print the step and its expected time; unless dry, run it (pinned to `core` when given,
    a sweep with the `launch` overrides of its Hydra launcher), log its wall time and keep its
    finished runs' records under `kept` (when given)."""
    launch = launch if step.sweep else ()
    argv = launch_command(step, runs, extra, launch)
    lane = "" if core is None else f"[core {core}] "
    plans = plan_runs(step, runs, extra, kept)
    chosen = dict(o.split("=", 1) for o in launch)
    launcher = chosen.get("hydra/launcher", "basic") if step.sweep else ""
    at_once = chosen.get("hydra.launcher.n_jobs")
    say("\n".join([f"== {lane}{step.name}: {time_text(plans)}", f"   {shlex.join(argv)}",
                   *(job_lines(step, plans, launcher, at_once and int(at_once), kept)
                     if launcher else [])]))
    if dry_run and not step.sweep:  # a sweep's restored jobs are in its job lines
        for p in plans:
            if p.state is None:
                say(f"   {RESTORED}: {p.run_dir} (kept in {kept}; not trained again)")
    if is_finished(step, runs, extra):
        say(f"   finished already: {runs / step.run_dir}")
        if kept is not None and not dry_run:
            publish.keep_step(step, runs, kept)
        return
    if dry_run:
        return
    start, started = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
    command = [sys.executable, *argv[1:]]
    code = subprocess.call(command if core is None else pinned(command, core), cwd=ROOT,
                           env=job_environment(step, runs))
    wall = time.perf_counter() - start
    say(f"   {lane}{step.name}: exit {code} after {duration(wall)}")
    log_command(runs, {"step": step.name, "command": shlex.join(argv), "exit": code,
                       "started": started, "wall_seconds": round(wall, 1),
                       "cpu": cpu_model(), "core": core, "launcher": launcher or None})
    if kept is not None:
        publish.keep_step(step, runs, kept)
    if code != 0 and step.job is not None and failed_in_training(step, runs):
        return  # as in its sweep, which records a job's failure and goes on: the table lists it
    if code != 0:
        raise RuntimeError(f"{step.name} failed with exit code {code}: {shlex.join(argv)}")
    stale = stale_jobs(step, runs, extra) if step.sweep else []
    if stale:
        raise RuntimeError(f"{step.experiment}: {len(stale)} job dir(s) hold a run of another "
                           f"config, e.g. {stale[0]}; remove those job dirs (or add "
                           "train.resume=false, which retrains every job), or choose another "
                           "--runs dir")


def failed_in_training(step: Step, runs: Path) -> bool:
    """Whether a job's run failed in itself: its failure record beside its own config (not a
    refusal, say of another config's run, which records nothing)."""
    run_dir = runs / step.run_dir
    saved = rundir.saved_config(run_dir)
    try:
        status = (read_metrics(run_dir) or {}).get("status")
    except ValueError:  # an unreadable metrics.json
        return False
    return (status == "failed" and saved is not None
            and not rundir.differences(saved, step_config(step, ())))


def lane_cores(lanes: int) -> list[int]:
    """The first `lanes` CPU cores this process may run on, one per lane."""
    return usable_core_ids()[:lanes]


def plan_lanes(steps: list[Step], lanes: int, seconds: dict[Step, float]) -> list[list[Step]]:
    """The steps split into `lanes` lists: longest first, each to the lane with least work;
    the steps with nothing left to train go first, in the first lane, so that their records are
    kept at once, not after hours of other work."""
    plan: list[list[Step]] = [[] for _ in range(lanes)]
    load = [0.0] * lanes
    for step in sorted(steps, key=lambda s: (seconds[s] > 0, -seconds[s])):
        lane = load.index(min(load))
        plan[lane].append(step)
        load[lane] += seconds[step]
    return plan


def run_lanes(steps: list[Step], lanes: int, runs: Path, extra: tuple[str, ...],
              dry_run: bool, kept: Path | None = None) -> dict[Step, RuntimeError]:
    """Run `steps` in `lanes` one-core processes side by side (`plan_lanes`), a sweep's jobs as
    runs of their own (`job_steps`: its jobs share the lanes, and each job's records are kept
    as it finishes), a lane stopping at its first failure; returns the failures by step once
    every lane has stopped."""
    cores = lane_cores(lanes)
    parent = {unit: step for step in steps for unit in job_steps(step, extra)}

    def extra_of(unit: Step) -> tuple[str, ...]:
        return () if unit.job is not None else extra

    plans = {u: plan_runs(u, runs, extra_of(u), kept) for u in parent}
    plan = plan_lanes(list(parent), lanes, {u: plan_weight(p) for u, p in plans.items()})
    for core, lane in zip(cores, plan, strict=True):
        print(f"lane on core {core}: {', '.join(s.name for s in lane) or 'nothing'}; "
              f"{time_text([p for s in lane for p in plans[s]])}", flush=True)
    failed: dict[Step, RuntimeError] = {}

    def run_lane(core: int, lane: list[Step]) -> None:
        for unit in lane:
            try:
                run_step(unit, runs, extra_of(unit), dry_run, core, kept)
            except Exception as exc:  # any: a dead thread must not read as a success
                failed.setdefault(parent[unit], step_error(unit, exc))
                return

    threads = [threading.Thread(target=run_lane, args=pair) for pair in zip(cores, plan,
                                                                             strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failed


def reproduce(target: str, runs: Path, out: Path, extra: tuple[str, ...], dry_run: bool,
              lanes: int = 1, launcher: str | None = None) -> None:
    """Every step of `target`, each result's docs after its steps. Launcher lanes (the default
    with lanes > 1): the steps in that many one-core processes side by side, then the docs of
    every result whose steps all succeeded, then the first failure is raised; basic, joblib and
    slurm: step after step, a sweep's jobs through that Hydra launcher (joblib: `lanes` jobs at
    once). The finished runs kept in OUT/runs are restored into `runs` first (where it has none)
    and each step's are kept there after it."""
    launcher = launcher or ("lanes" if lanes > 1 else "basic")
    plan = steps_of(target, extra)
    for _, steps in plan:  # the overrides are checked before anything trains
        for step in steps:
            step_config(step, extra) if not step.sweep else composed(step, extra)
    kept = out / KEPT_RUNS
    every = [p for _, steps in plan for s in steps for p in plan_runs(s, runs, extra, kept)]
    at_once = f" ({lanes} at once)" if launcher in ("lanes", "joblib") else ""
    print(f"{target}: {time_text(every)}; launcher {launcher}{at_once}; runs in {runs}, "
          f"results into {out}", flush=True)
    if not dry_run:
        runs.mkdir(parents=True, exist_ok=True)
        for _, steps in plan:
            for step in steps:
                publish.restore_step(step, runs, kept, extra)
    failed = (run_lanes([s for _, steps in plan for s in steps], lanes, runs, extra, dry_run,
                        kept) if launcher == "lanes" else {})
    launch = launcher_overrides(launcher, lanes)
    for name, steps in plan:
        if launcher != "lanes":
            for step in steps:
                run_step_or_raise(step, runs, extra, dry_run, kept, launch)
        if not failed.keys() & set(steps):
            publish.write_docs(name, runs, out, dry_run, steps[0].run_dir)
    if failed:
        raise next(iter(failed.values()))
