"""What a target trains: its steps (from the experiment files marked `# reproduce:`,
`targets.py`), each step's runs or sweep jobs with their configs, where each stands in a runs
dir, and the expected wall time left, from the kept records' own `seconds`."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cnn_jax.config import ConfigError, from_dictconfig, from_mapping, to_dict
from cnn_jax.errors import first_line
from cnn_jax.models.summary import flops_per_image
from cnn_jax.results import archive, rundir
from cnn_jax.results.records import read_metrics
from cnn_jax.results.tables import find_job_dirs
from experiments.compose import compose_dictconfig, not_sweeps, sweep_jobs
from experiments.overrides import search_dirs
from experiments.reproduce import targets

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "results"
KEPT_RUNS = "runs"  # OUT/runs: the finished runs' records (cnn_jax.results.archive), by run dir
BUDGETS = {"full": (), "tiny": ("data.train_limit=100", "train.epochs=1", "train.batch_size=50",
                                "train.progress=false")}
FULL_TRAIN_IMAGES = 50_000


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


def composable(overrides: tuple[str, ...]) -> tuple[str, ...]:
    """The overrides less the launcher's settings (`hydra/launcher=...`, `hydra.launcher.*`):
    they choose how jobs run, not what, and compose only with their launcher chosen."""
    return tuple(o for o in overrides
                 if not o.lstrip("+~").startswith(("hydra.launcher.", "hydra/launcher")))


def search_overrides(extra: tuple[str, ...]) -> tuple[str, ...]:
    """The `hydra.searchpath` overrides of `extra`: composing a job needs them too."""
    return tuple(o for o in extra if o.lstrip("+").startswith("hydra.searchpath"))


@functools.cache
def step_of(marked: targets.Published, search: tuple[str, ...] = ()) -> Step:
    """The step of a marked experiment file: a sweep when its overrides or the file sweep."""
    overrides = marked.overrides
    swept = len(not_sweeps(overrides)) < len(overrides)
    if not swept:
        with composing(marked.experiment):
            hydra = compose_dictconfig(f"experiment={marked.experiment}", *search,
                                       with_hydra=True).hydra
        swept = bool(hydra.sweeper.get("params"))
    return Step(marked.experiment, marked.experiment, overrides, sweep=swept)


@dataclass(frozen=True)
class Catalog:
    """The targets of a set of conf dirs: each result's marked files in order, and the file
    each experiment target runs (its own, or the one its `--same-as` names)."""

    results: tuple[tuple[str, tuple[targets.Published, ...]], ...]
    rows: tuple[tuple[str, targets.Published], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The results' names, then `all`."""
        return (*(name for name, _ in self.results), "all")

    def describe(self) -> str:
        """'nielsen, ablation_pooling, ..., all, nielsen/row1 .. nielsen/row9'."""
        rows = [name for name, _ in self.rows if name not in dict(self.results)]
        return ", ".join([*self.names, *name_runs(rows)])


def name_runs(names: list[str]) -> list[str]:
    """Names in a dir of 3 or more as 'first .. last' ('nielsen/row1 .. nielsen/row9')."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.rpartition("/")[0], []).append(name)
    return [f"{g[0]} .. {g[-1]}" if len(g) > 2 and parent else n
            for parent, g in groups.items() for n in ([g[0]] if len(g) > 2 and parent else g)]


@functools.cache
def catalog(conf_dirs: tuple[Path, ...] = (targets.CONF_DIR,)) -> Catalog:
    """The targets the experiment files under `conf_dirs` mark (`targets.published`)."""
    marked = targets.published(conf_dirs)
    by_name = {p.experiment: p for p in marked}
    results = tuple((name, tuple(p for p in marked if p.result == name and p.same_as is None))
                    for name in targets.result_order(marked))
    rows = []
    for p in marked:
        runs = by_name.get(p.same_as or p.experiment)
        if runs is None or runs.same_as is not None:
            raise ValueError(f"experiment {p.experiment}: --same-as {p.same_as!r} is not a "
                             "marked experiment with a step of its own")
        rows.append((p.experiment, runs))
    return Catalog(tuple((n, s) for n, s in results if s), tuple(rows))


def catalog_of(extra: tuple[str, ...]) -> Catalog:
    """The catalog of the project's conf dir and the dirs `extra`'s hydra.searchpath adds."""
    return catalog(search_dirs(extra))


def steps_of(target: str, extra: tuple[str, ...] = ()) -> list[tuple[str, tuple[Step, ...]]]:
    """(result name, its steps) for a target; `all` is every result in the catalog's order, an
    experiment's own name its one step (the table then updates that row and keeps the others).
    A comma-separated list is its targets' results in the order first named, each step once
    (`nielsen/row6,nielsen/row7,ablation_dropout`: rows 6 and 7 under one Nielsen table)."""
    known = catalog_of(extra)
    search = search_overrides(extra)
    plan: dict[str, list[Step]] = {}
    for one in target.split(","):
        for name, marked in _marked_of(one, known):
            steps = plan.setdefault(name, [])
            steps += [s for s in (step_of(p, search) for p in marked) if s not in steps]
    return [(name, tuple(steps)) for name, steps in plan.items()]


def _marked_of(target: str, known: Catalog) -> list[tuple[str, tuple[targets.Published, ...]]]:
    results, rows = dict(known.results), dict(known.rows)
    if target == "all":
        return list(known.results)
    if target in results:
        return [(target, results[target])]
    if target in rows:
        return [(rows[target].result, (rows[target],))]
    raise ValueError(f"target {target!r} is not one of {known.describe()} (or a "
                     "comma-separated list of them)")


def __getattr__(name: str):  # the project's own targets, read when first asked for
    if name == "TARGETS":
        return catalog().names
    if name == "ABLATIONS":  # the results written as ablation tables (not Nielsen's table)
        return tuple(n for n in catalog().names[:-1] if n != "nielsen")
    if name == "STEPS":
        return dict(steps_of("all"))
    if name == "NIELSEN":
        return dict(steps_of("nielsen"))["nielsen"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def job_steps(step: Step, extra: tuple[str, ...]) -> list[Step]:
    """A sweep step as one single-run step per job, in the job dirs Hydra would number (each
    with its job's overrides, `extra` included: run them with no extra); a single-run step as
    itself."""
    if not step.sweep:
        return [step]
    with composing(step.experiment):
        jobs = sweep_jobs(f"experiment={step.experiment}", *composable((*step.overrides,
                                                                         *extra)))
    own = [(*(o for o in job if not o.startswith("experiment=")),
            *(o for o in extra if o.startswith("hydra.") and not o.startswith("hydra.sweep.")))
           for job in jobs]  # sweep_jobs leaves Hydra's own settings out: each job keeps them
    return [Step(step.experiment, f"{step.run_dir}/{num}", o, job=num)
            for num, o in enumerate(own)]


def train_command(step: Step, runs: Path, extra: tuple[str, ...]) -> list[str]:
    """The `python -m experiments.train` argv of a step, resuming into its dir under `runs`."""
    where = "sweep" if step.sweep else "run"
    overrides = ("train.resume=auto", *step.overrides) if step.job is not None else (
        *step.overrides, "train.resume=auto", *extra)  # a job's own train.resume wins
    return ["python", "-m", "experiments.train", *(["-m"] if step.sweep else []),
            f"experiment={step.experiment}", *overrides, f"hydra.{where}.dir={runs / step.run_dir}"]


def is_finished(step: Step, runs: Path, extra: tuple[str, ...]) -> bool:
    """A single run that finished with the config the step runs now (its config.json, runtime
    keys aside), unless train.resume=false asks to train it again; a sweep always relaunches: its
    jobs of the same config skip themselves."""
    config = None if step.sweep else step_config(step, extra)
    return (config is not None and config["train"]["resume"] is not False
            and rundir.finished(runs / step.run_dir, config) is not None)


COMPOSE_LOCK = threading.RLock()  # Hydra's compose API is one global state: a lane at a time


@contextlib.contextmanager
def composing(what: str) -> Iterator[None]:
    """Compose under COMPOSE_LOCK; any error (Hydra's and OmegaConf's for a bad override, the
    composer's own) leaves as a one-line ValueError, `what: ` before it."""
    with COMPOSE_LOCK:
        try:
            yield
        except Exception as exc:
            raise ValueError(f"{what}: {first_line(exc)}" if what else first_line(exc)) from None


def composed(step: Step, extra: tuple[str, ...]):
    """The composed config of a step's command (its one-valued overrides: a sweep's first
    values are the file's own)."""
    single = not_sweeps(composable((*step.overrides, *extra)))
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
    return _validated(composed(step, extra), step.experiment)


def job_config(job_dir: Path, search: tuple[str, ...] = ()) -> dict | None:
    """The config a sweep job was launched with, composed now from its .hydra/overrides.yaml
    (None: no such file); ValueError when they no longer compose."""
    import yaml

    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    overrides = [str(o) for o in yaml.safe_load(path.read_text()) or []]
    with composing(""):
        dcfg = compose_dictconfig(*overrides, *search)
    return _validated(dcfg, str(job_dir))


def stale_jobs(step: Step, runs: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """The job dirs of a sweep step holding a run of another config than the one Hydra launched
    them with this time (a job refused for keeping another config's run keeps that run)."""
    stale = []
    for job in find_job_dirs(runs / step.run_dir):
        try:
            config = job_config(job, search_overrides(extra))
        except ValueError as exc:  # e.g. a job dir left from a sweep over a removed option
            stale.append(f"{job} ({exc})")
            continue
        state = rundir.state_of(job, config) if config else None
        if state and state.state == "another config":  # a failed job of this config is not
            stale.append(f"{job} ({state.detail})")     # stale: the table lists its failure
    return stale


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
        jobs = sweep_jobs(f"experiment={step.experiment}", *composable((*step.overrides,
                                                                         *extra)))
    keys = [o.split("=", 1)[0] for o in jobs[0]]
    varying = {k for i, k in enumerate(keys) if len({job[i] for job in jobs}) > 1}
    found = []
    for num, job in enumerate(jobs):
        what = f"{step.experiment} job {num}"
        with composing(what):
            dcfg = compose_dictconfig(*job, *search_overrides(extra))
        label = " ".join(o for o in job if o.split("=", 1)[0] in varying)
        found.append((label, Path(step.run_dir) / str(num), _validated(dcfg, what)))
    return tuple(found)


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
    """'Intel(R) Xeon(R) Processor, 2 cores (host vm) on 2026-12-07': the device (its CPU model
    and the cores the run could use, where the provenance names them; older records name only
    the device kind, 'cpu'), host and day a kept record was measured on."""
    device = provenance.get("cpu_model") or provenance.get("device_kind") or "unknown device"
    cores = provenance.get("usable_cores")
    device += f", {cores} core{'s' if cores != 1 else ''}" if cores else ""
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

