"""python -m experiments.reproduce TARGET --runs DIR: rerun a published result and rewrite its docs.

TARGET is nielsen, ablation_pooling, ablation_stride, ablation_dropout, cnn_vs_fc or all, or one
Nielsen row, nielsen/row1 .. nielsen/row9 (rows 8 and 9 are one step: five row-8 nets, one per job;
row 9 is their vote), or a comma-separated list of these (`nielsen/row7,ablation_dropout`: their
steps together, so that `--lanes` plans all of them at once). Each step runs its documented training
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

  --dry-run        print the commands, the runs "restored from records" and the expected times;
                   run and write nothing
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
  --lanes N        run the steps in N one-core processes side by side, each pinned to its own
                   CPU core (a sweep's jobs each a run of its own, with the command line's
                   hydra.* settings and the loggers' sweep group; the most time left first,
                   each to the least loaded lane, a finished run weighing nothing; each job's
                   records kept as it finishes); on a small CPU at minibatch 10 two one-core
                   processes train 1.3-1.75x the images/s of one two-core process
                   (docs/benchmarks.md). The docs are written at the end.
  OVERRIDE ...     extra Hydra overrides for every training command
Run it at low priority on a shared machine: `nice -n 10 python -m experiments.reproduce ...`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cnn_jax.config import ConfigError, from_dictconfig, from_mapping, to_dict
from cnn_jax.cpus import usable_core_ids, usable_cores
from cnn_jax.errors import first_line
from cnn_jax.loggers import SWEEP_GROUP_ENV
from cnn_jax.models.summary import flops_per_image
from cnn_jax.results import archive, rundir
from cnn_jax.results.records import read_metrics
from cnn_jax.results.tables import find_job_dirs
from experiments.compose import compose_dictconfig, not_sweeps, sweep_jobs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "results"
ABLATIONS = ("ablation_pooling", "ablation_stride", "ablation_dropout", "cnn_vs_fc")
TARGETS = ("nielsen", *ABLATIONS, "all")
BUDGETS = {"full": (), "tiny": ("data.train_limit=100", "train.epochs=1", "train.batch_size=50",
                                "train.progress=false")}
FULL_TRAIN_IMAGES = 50_000
LOG = "reproduce.jsonl"
KEPT_RUNS = "runs"  # OUT/runs: the finished runs' records (cnn_jax.results.archive), by run dir

@dataclass(frozen=True)
class Step:
    """One documented training command: an experiment file, its overrides, its dir under DIR.

    A step with `job` set is one job of a sweep step, run as a single run into the job's dir:
    its overrides are the job's own (the command line's included)."""

    experiment: str
    run_dir: str
    overrides: tuple[str, ...] = ()
    sweep: bool = False
    job: int | None = None

    @property
    def name(self) -> str:
        return self.experiment if self.job is None else f"{self.experiment} job {self.job}"


NIELSEN = (
    *(Step(f"nielsen/row{n}", f"nielsen/row{n}") for n in range(1, 6)),
    # rows 6 and 7: one seed per width, as published (`train.seeds=3` after the target for 3)
    Step("nielsen/row6", "nielsen/row6", ("width=300,1000", "train.seeds=1"), sweep=True),
    Step("nielsen/row7", "nielsen/row7", ("width=100,300,1000", "train.seeds=1"), sweep=True),
    # rows 8 and 9: five row-8 nets, one per job (each finishes on its own; `--lanes` or a
    # cluster trains them side by side); row 8 is seeds 0-2, row 9 the vote of all five
    Step("nielsen/row8", "nielsen/row8", ("seed=0,1,2,3,4", "train.seeds=1"), sweep=True),
)
STEPS = {"nielsen": NIELSEN} | {a: (Step(a, a, sweep=True),) for a in ABLATIONS}


# one Nielsen row: its step (row 9 is the vote of row 8's nets)
ROW_TARGETS = {s.experiment: (s,) for s in NIELSEN} | {"nielsen/row9": (NIELSEN[-1],)}


def steps_of(target: str) -> list[tuple[str, tuple[Step, ...]]]:
    """(result name, its steps) for a target; `all` is every result in TARGETS order, a row
    target one Nielsen step (the table then updates that row and keeps the others). A
    comma-separated list is its targets' results in the order first named, each step once
    (`nielsen/row6,nielsen/row7,ablation_dropout`: rows 6 and 7 under one Nielsen table)."""
    plan: dict[str, list[Step]] = {}
    for one in target.split(","):
        for name, steps in _steps_of_one(one):
            known = plan.setdefault(name, [])
            known += [s for s in steps if s not in known]
    return [(name, tuple(steps)) for name, steps in plan.items()]


def _steps_of_one(target: str) -> list[tuple[str, tuple[Step, ...]]]:
    if target in ROW_TARGETS:
        return [("nielsen", ROW_TARGETS[target])]
    if target not in TARGETS:
        raise ValueError(f"target {target!r} is not one of {', '.join(TARGETS)}, "
                         f"nielsen/row1 .. nielsen/row9 (or a comma-separated list of them)")
    return [(t, STEPS[t]) for t in (TARGETS[:-1] if target == "all" else (target,))]


def train_command(step: Step, runs: Path, extra: tuple[str, ...]) -> list[str]:
    """The `python -m experiments.train` argv of a step, resuming into its dir under `runs`."""
    where = "sweep" if step.sweep else "run"
    overrides = ("train.resume=auto", *step.overrides) if step.job is not None else (
        *step.overrides, "train.resume=auto", *extra)  # a job's own train.resume wins
    return ["python", "-m", "experiments.train", *(["-m"] if step.sweep else []),
            f"experiment={step.experiment}", *overrides, f"hydra.{where}.dir={runs / step.run_dir}"]


def job_steps(step: Step, extra: tuple[str, ...]) -> list[Step]:
    """A sweep step as one single-run step per job, in the job dirs Hydra would number (each
    with its job's overrides, `extra` included: run them with no extra); a single-run step as
    itself."""
    if not step.sweep:
        return [step]
    with composing(step.experiment):
        jobs = sweep_jobs(f"experiment={step.experiment}", *step.overrides, *extra)
    own = [(*(o for o in job if not o.startswith("experiment=")),
            *(o for o in extra if o.startswith("hydra.") and not o.startswith("hydra.sweep.")))
           for job in jobs]  # sweep_jobs leaves Hydra's own settings out: each job keeps them
    return [Step(step.experiment, f"{step.run_dir}/{num}", o, job=num)
            for num, o in enumerate(own)]


def is_finished(step: Step, runs: Path, extra: tuple[str, ...]) -> bool:
    """A single run that finished with the config the step runs now (its config.json, runtime
    keys aside), unless train.resume=false asks to train it again; a sweep always relaunches: its
    jobs of the same config skip themselves."""
    config = None if step.sweep else step_config(step, extra)
    return (config is not None and config["train"]["resume"] is not False
            and rundir.finished(runs / step.run_dir, config) is not None)


COMPOSE_LOCK = threading.Lock()  # Hydra's compose API is one global state: a lane at a time


@contextlib.contextmanager
def composing(what: str) -> Iterator[None]:
    """Compose under COMPOSE_LOCK; any error (Hydra's and OmegaConf's for a bad override, the
    composer's own) leaves as a one-line ValueError, `what: ` before it."""
    with COMPOSE_LOCK:
        try:
            yield
        except Exception as exc:
            raise ValueError(f"{what}: {first_line(exc)}" if what else first_line(exc)) from None


def _composed(step: Step, extra: tuple[str, ...]):
    single = not_sweeps((*step.overrides, *extra))
    with composing(f"overrides {' '.join(single)!r}"):
        return compose_dictconfig(f"experiment={step.experiment}", *single)


def _validated(dcfg: object, what: str) -> dict:
    """The JSON-ready dict of a composed config, as a run writes it to config.json."""
    try:
        return to_dict(from_dictconfig(dcfg))
    except ConfigError as exc:
        raise ValueError(f"{what}: {first_line(exc)}") from None


@functools.cache
def step_config(step: Step, extra: tuple[str, ...]) -> dict:
    """The resolved config (as config.json holds it) of a single-run step (do not mutate)."""
    return _validated(_composed(step, extra), step.experiment)


def job_config(job_dir: Path) -> dict | None:
    """The config a sweep job was launched with, composed now from its .hydra/overrides.yaml
    (None: no such file); ValueError when they no longer compose."""
    import yaml

    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    overrides = [str(o) for o in yaml.safe_load(path.read_text()) or []]
    with composing(""):
        dcfg = compose_dictconfig(*overrides)
    return _validated(dcfg, str(job_dir))


def stale_jobs(step: Step, runs: Path) -> list[str]:
    """The job dirs of a sweep step holding a run of another config than the one Hydra launched
    them with this time (a job refused for keeping another config's run keeps that run)."""
    stale = []
    for job in find_job_dirs(runs / step.run_dir):
        try:
            config = job_config(job)
        except ValueError as exc:  # e.g. a job dir left from a sweep over a removed option
            stale.append(f"{job} ({exc})")
            continue
        state = rundir.state_of(job, config) if config else None
        if state and state.state == "another config":  # a failed job of this config is not
            stale.append(f"{job} ({state.detail})")     # stale: the table lists its failure
    return stale


@dataclass(frozen=True)
class Estimate:
    """A run's expected wall seconds (None: unknown), where they come from, and the machine
    that measured them (as the kept record's provenance names it)."""

    seconds: float | None
    source: str
    machine: str | None = None


def kept_dir() -> Path:
    """The published records that expected times come from (DOCS/runs), whatever --out says."""
    return DOCS / KEPT_RUNS


def machine_of(provenance: dict) -> str:
    """'cpu (host vm) on 2026-12-04': the device (its CPU model, when the provenance names one),
    host and day a kept record was measured on."""
    device = provenance.get("cpu") or provenance.get("device_kind") or "unknown device"
    day = str(provenance.get("started_at") or "")[:10]
    return f"{device} (host {provenance.get('hostname')})" + (f" on {day}" if day else "")


@functools.cache
def _kept_costs(root: Path) -> tuple[tuple[Path, float, float, str], ...]:
    """(run dir, seconds, job_cost, machine) of every finished run kept under `root` that
    records its seconds and config."""
    found = []
    for run_dir in archive.finished_runs(root) if root.is_dir() else []:
        metrics, config = read_metrics(run_dir) or {}, rundir.saved_config(run_dir)
        if metrics.get("seconds") and config:
            found.append((run_dir, float(metrics["seconds"]), job_cost(config),
                          machine_of(metrics.get("provenance") or {})))
    return tuple(found)


def run_estimate(where: Path, config: dict, family: Path) -> Estimate:
    """The expected wall seconds of the run at `where` (relative to a runs dir) with `config`,
    from the kept records (`kept_dir`): its own record's seconds (scaled by images x FLOPs,
    `job_cost`, when the config differs, say another budget); else those of the records kept
    under `family` (its sweep or row), scaled the same way; else, a rough figure, those of all
    kept records; unknown without any."""
    root = kept_dir()
    costs = _kept_costs(root)
    cost = job_cost(config)
    own = [c for c in costs if c[0] == root / where]
    if own:
        _, seconds, own_cost, machine = own[0]
        same = abs(own_cost - cost) <= 1e-9 * cost
        return Estimate(seconds * cost / own_cost, "its kept record" if same else
                        "scaled by images x FLOPs from its kept record", machine)
    for pool, source in (([c for c in costs if c[0].is_relative_to(root / family)],
                          f"scaled by images x FLOPs from the kept records of {family}"),
                         (list(costs), "rough: scaled by images x FLOPs from the kept records "
                                       "of other results")):
        if pool:
            rate = sum(c[1] for c in pool) / sum(c[2] for c in pool)
            machines = sorted({c[3] for c in pool})
            return Estimate(rate * cost, source, machines[0] if len(machines) == 1 else None)
    return Estimate(None, "unknown: no kept record")


def family_of(step: Step) -> Path:
    """Where the kept records of a step's kind of run lie: its sweep's dir for a job, else its
    own run or sweep dir."""
    return Path(step.run_dir).parent if step.job is not None else Path(step.run_dir)


@dataclass(frozen=True)
class RunPlan:
    """One run of a step: its label, dir, config, what happens to it (a `rundir.state_of`
    state, or RESTORED), the share of it still to train, and its expected seconds."""

    label: str
    run_dir: Path
    config: dict
    state: rundir.RunState | None
    left: float
    estimate: Estimate


RESTORED = "restored from records"


def plan_runs(step: Step, runs: Path, extra: tuple[str, ...],
              kept: Path | None = None) -> list[RunPlan]:
    """Each run the step trains, with where it stands in `runs`: RESTORED (nothing to train)
    when `kept` holds it finished with this config and `runs` has none, else its state and the
    share still to train (`left_share`)."""
    plans = []
    for label, run_dir, config in step_runs(step, runs, extra):
        where = run_dir.relative_to(runs)
        estimate = run_estimate(where, config, family_of(step))
        if kept is not None and archive.restorable(kept / where, run_dir, config):
            plans.append(RunPlan(label, run_dir, config, None, 0.0, estimate))
            continue
        state = rundir.state_of(run_dir, config)
        plans.append(RunPlan(label, run_dir, config, state, left_share(state), estimate))
    return plans


def time_text(plans: list[RunPlan]) -> str:
    """'expected 2 h 05 min left (its kept record; measured on cpu (host vm) on 2026-12-04)':
    the time still to train, summed over the runs with a known estimate, and where it comes
    from; the runs restored from records and those of unknown time counted."""
    todo = [p for p in plans if p.left > 0]
    restored = sum(p.state is None for p in plans)
    unknown = [p for p in todo if p.estimate.seconds is None]
    known = sum(p.left * p.estimate.seconds for p in todo if p.estimate.seconds is not None)
    parts = [f"{restored} of {len(plans)} run(s) {RESTORED}"] if restored else []
    if not todo:
        return "; ".join([*parts, "nothing left to train"])
    sources = list(dict.fromkeys(p.estimate.source for p in todo))
    machines = sorted({p.estimate.machine for p in todo if p.estimate.machine})
    head = (f"expected time unknown for {len(unknown)} of {len(todo)} run(s) to train"
            + (f" (the others {duration(known)})" if len(unknown) < len(todo) else "")
            if unknown else f"expected {duration(known)} left")
    where = "; ".join(sources) + (f"; measured on {', '.join(machines)}" if machines else "")
    return "; ".join([*parts, f"{head} ({where})"])


def plan_weight(plans: list[RunPlan]) -> float:
    """What lanes are planned by: the expected seconds left, or where they are unknown (no
    record is kept at all, `run_estimate`), the images x FLOPs left (`job_cost`)."""
    return sum(p.left * (p.estimate.seconds if p.estimate.seconds is not None
                         else job_cost(p.config)) for p in plans)


def duration(seconds: float) -> str:
    """'2 h 05 min', '13 min', '40 s'."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('unknown' elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                "unknown")


LOG_LOCK = threading.Lock()  # lanes append to the one reproduce.jsonl
SAY_LOCK = threading.Lock()  # lanes print whole lines


def say(text: str) -> None:
    """Print `text` as one write, flushed: lanes' lines never interleave."""
    with SAY_LOCK:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def run_step(step: Step, runs: Path, extra: tuple[str, ...], dry_run: bool,
             core: int | None = None, kept: Path | None = None) -> None:
    """Print the step and its expected time; unless dry, run it (pinned to `core` when given),
    log its wall time and keep its finished runs' records under `kept` (when given)."""
    argv = train_command(step, runs, extra)
    lane = "" if core is None else f"[core {core}] "
    plans = plan_runs(step, runs, extra, kept)
    say(f"== {lane}{step.name}: {time_text(plans)}\n   {shlex.join(argv)}")
    if dry_run:
        for p in plans:
            if p.state is None:
                say(f"   {RESTORED}: {p.run_dir} (kept in {kept}; not trained again)")
    if is_finished(step, runs, extra):
        say(f"   finished already: {runs / step.run_dir}")
        if kept is not None and not dry_run:
            keep_step(step, runs, kept)
        return
    if dry_run:
        return
    start, started = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
    command = [sys.executable, *argv[1:]]
    code = subprocess.call(command if core is None else pinned(command, core), cwd=ROOT,
                           env=job_environment(step, runs))
    wall = time.perf_counter() - start
    say(f"   {lane}{step.name}: exit {code} after {duration(wall)}")
    with LOG_LOCK, open(runs / LOG, "a") as log:
        log.write(json.dumps({"step": step.name, "command": shlex.join(argv), "exit": code,
                              "started": started, "wall_seconds": round(wall, 1),
                              "cpu": cpu_model(), "core": core}) + "\n")
    if kept is not None:
        keep_step(step, runs, kept)
    if code != 0 and step.job is not None and failed_in_training(step, runs):
        return  # as in its sweep, which records a job's failure and goes on: the table lists it
    if code != 0:
        raise RuntimeError(f"{step.name} failed with exit code {code}: {shlex.join(argv)}")
    stale = stale_jobs(step, runs) if step.sweep else []
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


def keep_step(step: Step, runs: Path, kept: Path) -> list[Path]:
    """Copy the records of the step's finished runs under `kept` (`cnn_jax.results.archive`);
    an error doing so is printed, not raised: the training it follows went well."""
    try:
        done = archive.keep(runs / step.run_dir, kept / step.run_dir)
    except (OSError, ValueError) as exc:
        say(f"   warning: {step.name}: records not kept in {kept / step.run_dir}: "
            f"{type(exc).__name__}: {first_line(exc)}")
        return []
    if done:
        say(f"   kept the records of {len(done)} finished run(s) in {kept / step.run_dir}")
    return done


def restore_step(step: Step, runs: Path, kept: Path, extra: tuple[str, ...]) -> list[Path]:
    """Copy the step's runs kept under `kept` into `runs` where it has none, each that finished
    with the config the step runs there now."""
    top = runs / step.run_dir
    configs = {run_dir.relative_to(top): config for _, run_dir, config
               in step_runs(step, runs, extra)}
    back = archive.restore(kept / step.run_dir, top, configs)
    if back:
        say(f"   {step.experiment}: {len(back)} finished run(s) restored from "
            f"{kept / step.run_dir} (skipped, not trained again)")
    return back


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


def run_step_or_raise(step: Step, runs: Path, extra: tuple[str, ...], dry_run: bool,
                      kept: Path | None = None) -> None:
    """run_step, any exception of it raised as the step's one-line RuntimeError."""
    try:
        run_step(step, runs, extra, dry_run, kept=kept)
    except Exception as exc:  # OSError, subprocess.SubprocessError, ValueError, ...
        error = step_error(step, exc)
        if error is exc:
            raise
        raise error from exc


def step_error(step: Step, exc: Exception) -> RuntimeError:
    """A step's failure as a one-line RuntimeError (a RuntimeError stays as it is)."""
    if isinstance(exc, RuntimeError):
        return exc
    return RuntimeError(f"{step.name} failed: {type(exc).__name__}: {first_line(exc)}")


def step_runs(step: Step, runs: Path, extra: tuple[str, ...]) -> list[tuple[str, Path, dict]]:
    """(label, run dir, resolved config) of each run the step's command trains: its one run, or
    every job of its sweep as Hydra numbers them, labelled by the values the sweep varies;
    ValueError (one line) for overrides that do not compose."""
    return [(label, runs / where, config) for label, where, config in _step_runs(step, extra)]


@functools.cache
def _step_runs(step: Step, extra: tuple[str, ...]) -> tuple[tuple[str, Path, dict], ...]:
    """step_runs relative to the runs dir (composed once per step; do not mutate)."""
    if not step.sweep:
        return (("", Path(step.run_dir), step_config(step, extra)),)
    with composing(step.experiment):
        jobs = sweep_jobs(f"experiment={step.experiment}", *step.overrides, *extra)
    keys = [o.split("=", 1)[0] for o in jobs[0]]
    varying = {k for i, k in enumerate(keys) if len({job[i] for job in jobs}) > 1}
    found = []
    for num, job in enumerate(jobs):
        what = f"{step.experiment} job {num}"
        with composing(what):
            dcfg = compose_dictconfig(*job)
        label = " ".join(o for o in job if o.split("=", 1)[0] in varying)
        found.append((label, Path(step.run_dir) / str(num), _validated(dcfg, what)))
    return tuple(found)


def job_cost(config: dict) -> float:
    """The weight of a sweep's job in the sweep's time: the images it trains on (seeds x epochs x
    training images, expanded: 5x) times its net's forward FLOPs per image. On one core of the
    project's CPU this ranks row 7's widths 1 : 1.13 : 1.95 for measured 1 : 1.13 : 2.36 (80, 90
    and 189 s per epoch, 2026-12-03): wide FC layers at minibatch 10 cost more than their FLOPs."""
    data, train = config["data"], config["train"]
    images = min(data.get("train_limit") or FULL_TRAIN_IMAGES, FULL_TRAIN_IMAGES)
    images *= train["seeds"] * train["epochs"] * (5 if data.get("expand") else 1)
    return images * flops_per_image(from_mapping(config).model)


def left_share(state: rundir.RunState) -> float:
    """The share of a run still to train: none once finished, all of one holding another
    config's run (it trains elsewhere or over it), else its epochs not done."""
    if state.state in ("finished", "diverged"):
        return 0.0
    if state.state == "another config" or not state.epochs_planned:
        return 1.0
    return 1.0 - min(state.epochs_done, state.epochs_planned) / state.epochs_planned


def status_lines(step: Step, runs: Path, extra: tuple[str, ...],
                 kept: Path | None = None) -> list[str]:
    """Where each run of the step stands (RESTORED for the runs `kept` holds finished with this
    config, where `runs` has none), after a head line with the expected time left."""
    plans = plan_runs(step, runs, extra, kept)
    lines = []
    for p in plans:
        name = " ".join(filter(None, (p.run_dir.name, p.label))) if step.sweep else str(p.run_dir)
        if p.state is None:
            lines.append(f"   {name}: {RESTORED} (kept in {kept}; not trained again)")
            continue
        detail = f" ({p.state.detail})" if p.state.detail else ""
        lines.append(f"   {name}: {p.state.state}{detail}, {p.state.epochs_done}/"
                     f"{p.state.epochs_planned} epochs")
    where = f"{runs / step.run_dir}, {len(plans)} jobs" if step.sweep else "1 run"
    return [f"== {step.experiment} ({where}): {time_text(plans)}", *lines]


def write_docs(name: str, runs: Path, out: Path, dry_run: bool) -> None:
    """Rewrite the result's tables and figure (ablation) or Nielsen's table."""
    if name == "nielsen":
        target = out / "nielsen_ch6.md"
        print(f"== table: python -m experiments.nielsen_table {runs / 'nielsen'} --out {target}")
        if not dry_run:
            from experiments.nielsen_table import main as nielsen_main

            if nielsen_main([str(runs / "nielsen"), "--out", str(target)]) != 0:
                raise RuntimeError(f"nielsen table: {target} not written (the error above)")
        return
    print(f"== table: python -m experiments.table {runs / name} --out {out / name} "
          f"--title 'Ablation: {name}'", flush=True)
    if not dry_run:
        from experiments.table import write_outputs

        write_outputs(runs / name, out / name, f"Ablation: {name}")


def lane_cores(lanes: int) -> list[int]:
    """The first `lanes` CPU cores this process may run on, one per lane."""
    return usable_core_ids()[:lanes]


def plan_lanes(steps: list[Step], lanes: int, seconds: dict[Step, float]) -> list[list[Step]]:
    """The steps split into `lanes` lists: longest first, each to the lane with least work."""
    plan: list[list[Step]] = [[] for _ in range(lanes)]
    load = [0.0] * lanes
    for step in sorted(steps, key=lambda s: -seconds[s]):
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
              lanes: int = 1) -> None:
    """Every step of `target`, each result's docs after its steps (with lanes > 1: the steps
    in that many one-core processes side by side, then the docs of every result whose steps
    all succeeded, then the first failure is raised). The finished runs kept in OUT/runs are
    restored into `runs` first (where it has none) and each step's are kept there after it."""
    plan = steps_of(target)
    for _, steps in plan:  # the overrides are checked before anything trains
        for step in steps:
            step_config(step, extra) if not step.sweep else _composed(step, extra)
    kept = out / KEPT_RUNS
    every = [p for _, steps in plan for s in steps for p in plan_runs(s, runs, extra, kept)]
    print(f"{target}: {time_text(every)}; runs in {runs}, results into {out}", flush=True)
    if not dry_run:
        runs.mkdir(parents=True, exist_ok=True)
        for _, steps in plan:
            for step in steps:
                restore_step(step, runs, kept, extra)
    failed = (run_lanes([s for _, steps in plan for s in steps], lanes, runs, extra, dry_run,
                        kept) if lanes > 1 else {})
    for name, steps in plan:
        if lanes == 1:
            for step in steps:
                run_step_or_raise(step, runs, extra, dry_run, kept)
        if not failed.keys() & set(steps):
            write_docs(name, runs, out, dry_run)
    if failed:
        raise next(iter(failed.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.reproduce",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("target", help=f"one of {', '.join(TARGETS)}, or nielsen/rowN (N 1-9), "
                        "or a comma-separated list of them")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    parser.add_argument("--runs", type=Path, required=True, help="run and sweep dirs go here")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results dir (default: {DOCS} with --budget full, "
                             "RUNS/results with any other budget)")
    parser.add_argument("--budget", default="full", help=f"one of {', '.join(BUDGETS)}")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--status", action="store_true",
                        help="print where each run stands in RUNS and the time left; run nothing")
    parser.add_argument("--keep", action="store_true",
                        help="copy the records of the finished runs in RUNS to OUT/runs now; "
                             "run nothing")
    parser.add_argument("--lanes", type=int, default=1,
                        help="one-core processes side by side, each pinned to a core (default 1)")
    args = parser.parse_intermixed_args(argv)
    try:
        if args.budget not in BUDGETS:
            raise ValueError(f"--budget {args.budget!r} is not one of {', '.join(BUDGETS)}")
        if not 1 <= args.lanes <= usable_cores() or (args.lanes > 1 and
                                                     not hasattr(os, "sched_setaffinity")):
            raise ValueError(f"--lanes {args.lanes} must be between 1 and the "
                             f"{usable_cores()} CPU cores this process may use "
                             "(more than 1 needs os.sched_setaffinity, Linux)")
        if args.keep and (args.dry_run or args.status):
            raise ValueError("--keep copies records: use it without --dry-run and --status")
        extra = (*BUDGETS[args.budget], *args.overrides)
        out = args.out
        if args.status:
            kept = (out or (DOCS if args.budget == "full" else args.runs / "results")) / KEPT_RUNS
            for _, steps in steps_of(args.target):
                for step in steps:
                    print("\n".join(status_lines(step, args.runs.absolute(), extra,
                                                 kept.absolute())), flush=True)
            return 0
        if out is None and args.budget != "full":
            out = args.runs / "results"
            print(f"--budget {args.budget}: the docs go to {out.absolute()}, not {DOCS} "
                  "(--out sets where)", flush=True)
        if args.keep:
            for _, steps in steps_of(args.target):
                for step in steps:
                    keep_step(step, args.runs.absolute(), (out or DOCS).absolute() / KEPT_RUNS)
            return 0
        reproduce(args.target, args.runs.absolute(), (out or DOCS).absolute(), extra,
                  args.dry_run, args.lanes)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
