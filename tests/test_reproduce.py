"""experiments.reproduce: the documented commands, expected times, skip / resume, and a real tiny
run of one ablation end to end into temp dirs (never docs/results)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cnn_jax.loggers import SWEEP_GROUP_ENV
from experiments import reproduce
from experiments.compose import compose_dictconfig, not_sweeps, sweep_jobs
from experiments.reproduce import __main__ as cli
from experiments.reproduce import plan, publish, run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def docs_elsewhere(tmp_path, monkeypatch):
    """reproduce's default results dir (tables, kept runs) in the test's own dir, never docs/."""
    monkeypatch.setattr(plan, "DOCS", tmp_path / "docs_results")
    plan._kept_costs.cache_clear()
    yield
    plan._kept_costs.cache_clear()


def _kept_record(run_dir: Path, config: dict, seconds: float, day: str = "2026-12-04") -> None:
    """A finished run's records as docs/results/runs keeps them: config, metrics with seconds."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "metrics.json").write_text(json.dumps({
        "status": "ok", "seconds": seconds, "provenance": {
            "device_kind": "cpu", "hostname": "box", "started_at": f"{day}T05:00:00+00:00"}}))


def test_nielsen_commands_resume_into_the_runs_dir_and_row8_trains_a_net_per_job(tmp_path):
    steps = dict(reproduce.steps_of("nielsen"))["nielsen"]
    assert [s.experiment for s in steps] == [f"nielsen/row{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8)]
    row8 = reproduce.train_command(steps[-1], tmp_path, ("x=1",))
    assert row8 == ["python", "-m", "experiments.train", "-m", "experiment=nielsen/row8",
                    "seed=0,1,2,3,4", "train.seeds=1", "train.resume=auto", "x=1",
                    f"hydra.sweep.dir={tmp_path}/nielsen/row8"]
    # five one-net jobs, each recording its test errors for row 9's vote
    jobs = [compose_dictconfig(*job) for job in sweep_jobs(*row8[4:-2])]
    assert [job.seed for job in jobs] == [0, 1, 2, 3, 4]
    assert all(job.train.seeds == 1 and job.train.test_errors for job in jobs)
    row6 = reproduce.train_command(steps[5], tmp_path, ())
    # rows 6 and 7 as published: one seed per width; one more override asks for three
    assert row6[3:7] == ["-m", "experiment=nielsen/row6", "width=300,1000", "train.seeds=1"]
    assert row6[-1] == f"hydra.sweep.dir={tmp_path}/nielsen/row6"
    for step in steps[5:7]:
        assert "train.seeds=1" in step.overrides
    assert [n for n, _ in reproduce.steps_of("all")] == list(reproduce.TARGETS[:-1])


def test_a_list_of_targets_is_their_results_in_order_each_step_once():
    nielsen = dict(reproduce.steps_of("nielsen"))["nielsen"]
    plan = reproduce.steps_of("nielsen/row7,ablation_dropout,nielsen/row6,nielsen/row9,"
                              "nielsen/row8")
    # rows under one Nielsen table in the order named; rows 8 and 9 are one step
    assert plan == [("nielsen", (nielsen[6], nielsen[5], nielsen[7])),
                    ("ablation_dropout", reproduce.STEPS["ablation_dropout"])]
    assert reproduce.steps_of("cnn_vs_fc,all") == reproduce.steps_of("cnn_vs_fc,all,nielsen")
    assert [n for n, _ in reproduce.steps_of("cnn_vs_fc,all")] == [
        "cnn_vs_fc", *(t for t in reproduce.TARGETS[:-1] if t != "cnn_vs_fc")]
    for bad in ("nielsen/row6,", "nielsen/row6,row7"):
        with pytest.raises(ValueError, match=f"target {bad.split(',')[1]!r} is not one of"):
            reproduce.steps_of(bad)


def test_expected_time_is_a_kept_records_own_seconds_scaled_by_images_and_flops(tmp_path):
    (step,) = dict(reproduce.steps_of("cnn_vs_fc"))["cnn_vs_fc"]
    jobs = reproduce.job_steps(step, ())
    configs = [reproduce.step_config(j, ()) for j in jobs]
    runs = tmp_path / "runs"
    unknown = reproduce.plan_runs(step, runs, ())
    assert [p.estimate.seconds for p in unknown] == [None] * 4  # no kept record at all
    assert reproduce.time_text(unknown) == ("expected time unknown for 4 of 4 run(s) to train "
                                            "(unknown: no kept record)")
    kept = reproduce.kept_dir()
    _kept_record(kept / "cnn_vs_fc" / "0", configs[0], 100.0)
    _kept_record(kept / "cnn_vs_fc" / "3", configs[3], 400.0)
    plan._kept_costs.cache_clear()
    plans = reproduce.plan_runs(step, runs, ())
    assert plans[0].estimate == reproduce.Estimate(100.0, "its kept record",
                                                   "cpu (host box) on 2026-12-04")
    assert plans[3].estimate.seconds == 400.0
    # job 1 has no record: the sweep's records' seconds per unit of images x FLOPs
    rate = 500.0 / (reproduce.job_cost(configs[0]) + reproduce.job_cost(configs[3]))
    assert plans[1].estimate.seconds == pytest.approx(rate * reproduce.job_cost(configs[1]))
    assert plans[1].estimate.source == ("scaled by images x FLOPs from the kept records of "
                                        "cnn_vs_fc")
    # another budget: the same record scaled by its images (2 seeds x 1 epoch x 500 of 40 x 50k)
    tiny = ("data.train_limit=500", "train.epochs=1", "train.seeds=2")
    small = reproduce.plan_runs(step, runs, tiny)[0].estimate
    assert small.seconds == pytest.approx(100.0 * 2 * 500 / (5 * 8 * 50_000))
    assert small.source == "scaled by images x FLOPs from its kept record"
    # a row with no record of its own kind: a rough figure from every kept record, so labelled
    row1 = reproduce.plan_runs(_row(1), runs, ())[0].estimate
    assert row1.seconds == pytest.approx(rate * reproduce.job_cost(reproduce.step_config(
        _row(1), ())))
    assert row1.source.startswith("rough: ")
    text = reproduce.time_text(plans)
    assert text.startswith(f"expected {reproduce.duration(sum(p.estimate.seconds for p in plans))}"
                           " left (its kept record; scaled by") and "host box" in text
    assert reproduce.duration(7500) == "2 h 05 min" and reproduce.duration(40) == "40 s"
    assert not hasattr(reproduce, "COSTS")  # no dated figures in the code


def test_dry_run_and_status_say_restored_from_records_and_count_no_time_for_them(
        tmp_path, capsys):
    (step,) = dict(reproduce.steps_of("cnn_vs_fc"))["cnn_vs_fc"]
    jobs = reproduce.job_steps(step, ())
    kept, runs = reproduce.kept_dir(), tmp_path / "runs"
    for job in jobs[:3]:  # three of four jobs kept finished: restored, not trained
        _kept_record(kept / job.run_dir, reproduce.step_config(job, ()), 60.0)
    assert cli.main(["cnn_vs_fc", "--runs", str(runs), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.count("restored from records: ") == 3
    assert f"restored from records: {runs}/cnn_vs_fc/0 (kept in {kept}" in text
    assert "3 of 4 run(s) restored from records; expected " in text
    left = reproduce.plan_runs(step, runs, (), kept)[3].estimate.seconds
    assert f"expected {reproduce.duration(left)} left" in text
    assert not runs.exists()  # a dry run restores nothing
    assert cli.main(["cnn_vs_fc", "--runs", str(runs), "--status"]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[0].startswith(f"== cnn_vs_fc ({runs}/cnn_vs_fc, 4 jobs): 3 of 4 run(s) "
                                "restored from records; expected ")
    assert status[1].startswith("   0 model=fc30: restored from records (kept in ")
    assert status[4] == "   3 model=nielsen_conv2: not started, 0/8 epochs"
    # a run dir that already holds a run is never restored over: it counts as it stands
    _finished_run(runs / "cnn_vs_fc" / "0", reproduce.step_config(jobs[0], ()))
    plans = reproduce.plan_runs(step, runs, (), kept)
    assert plans[0].state.state == "finished" and plans[1].state is None


def _finished_run(run_dir: Path, config: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps({"status": "ok"}))
    (run_dir / "config.json").write_text(json.dumps(config))


def _row(n: int) -> reproduce.Step:
    return next(s for s in reproduce.NIELSEN if s.experiment == f"nielsen/row{n}")


def test_dry_run_prints_commands_and_times_and_skips_finished_rows(tmp_path, capsys):
    row1 = tmp_path / "runs" / "nielsen" / "row1"
    _finished_run(row1, reproduce.step_config(_row(1), ()))
    out = tmp_path / "out"
    assert cli.main(["nielsen", "--runs", str(tmp_path / "runs"), "--out", str(out),
                           "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "python -m experiments.train experiment=nielsen/row2 train.resume=auto" in text
    assert f"finished already: {row1}" in text and text.count("finished already") == 1
    assert "expected time unknown for 1 of 1 run(s) to train (unknown: no kept record)" in text
    assert f"--out {out}/nielsen_ch6.md" in text
    assert not out.exists() and sorted(p.name for p in (tmp_path / "runs").rglob("*")) == [
        "config.json", "metrics.json", "nielsen", "row1"]


def test_a_finished_run_of_another_config_is_not_skipped(tmp_path, capsys):
    """A tiny-budget run (or one of an older experiment file) is no finished full run."""
    from cnn_jax.config import to_dict
    from experiments.compose import compose_config

    runs, tiny = tmp_path / "runs", reproduce.BUDGETS["tiny"]
    row1 = runs / "nielsen" / "row1"
    _finished_run(row1, to_dict(compose_config("experiment=nielsen/row1", *tiny)))
    assert cli.main(["nielsen/row1", "--runs", str(runs), "--dry-run"]) == 0
    assert "finished already" not in capsys.readouterr().out
    assert cli.main(["nielsen/row1", "--runs", str(runs), "--dry-run", "--budget",
                           "tiny"]) == 0
    assert f"finished already: {row1}" in capsys.readouterr().out
    assert not reproduce.is_finished(_row(1), runs, ())
    assert reproduce.is_finished(_row(1), runs, tiny)
    # runtime keys (progress, resume, ...) do not make another config
    config = json.loads(json.dumps(reproduce.step_config(_row(1), ())))
    config["train"] |= {"progress": False, "resume": True}
    _finished_run(row1, config)
    assert reproduce.is_finished(_row(1), runs, ())


def test_a_single_run_is_checked_against_its_one_valued_overrides_however_they_are_spelled():
    # a comma inside a quoted or list value is one value; `a,b` and range() are sweeps
    config = reproduce.step_config(_row(1), ("train.compile_cache='/tmp/a,b'", "seed=4,5"))
    assert config["train"]["compile_cache"] == "/tmp/a,b"
    assert config["seed"] == reproduce.step_config(_row(1), ())["seed"] != 4
    assert not_sweeps(["x=[1,2]", "m=a,b", "s=range(3)", "c='a,b'", "d={a:1,b:2}", "y=1"]) == [
        "x=[1,2]", "c='a,b'", "d={a:1,b:2}", "y=1"]


def test_sweep_jobs_are_the_experiments_sweep_then_the_command_line_in_hydras_order():
    jobs = sweep_jobs("experiment=ablation_dropout")  # its file sweeps dropout x data.expand
    assert len(jobs) == 10
    assert jobs[1] == ["dropout=0.0", "data.expand=True", "experiment=ablation_dropout"]
    assert jobs[9][:2] == ["dropout=0.7", "data.expand=True"]
    # a command-line value replaces the file's sweep of that key; a new sweep multiplies
    jobs = sweep_jobs("experiment=ablation_dropout", "dropout=0.5", "seed=range(2)")
    assert [j[:2] + j[3:] for j in jobs] == [
        ["dropout=0.5", f"data.expand={expand}", f"seed={seed}"]
        for expand in (False, True) for seed in (0, 1)]
    assert sweep_jobs("experiment=nielsen/row5", "hydra.sweep.dir=/x") == [
        ["experiment=nielsen/row5"]]  # hydra.* overrides are no job's
    for overrides, needle in [
            (("pooling=glob(*)",), "pooling=glob(*): glob sweeps are not listed"),
            (("hparams_search=mnist_optuna",), "OptunaSweeper': only the basic sweeper's"),
            (("hydra.sweep.subdir=a",), "hydra.sweep.subdir='a': job dirs are found by number")]:
        with pytest.raises(ValueError, match=re.escape(needle)):
            sweep_jobs(*overrides)


def test_lanes_take_the_longest_steps_first_each_to_the_least_loaded_lane():
    steps = [reproduce.Step(f"e{i}", f"d{i}") for i in range(5)]
    seconds = dict(zip(steps, (10.0, 40.0, 30.0, 20.0, 25.0), strict=True))
    a, b = run.plan_lanes(steps, 2, seconds)
    # 40 -> a, 30 -> b, 25 -> b (30 < 40), 20 -> a (40 < 55), 10 -> b (60 < 55? no: a has 60)
    assert [s.experiment for s in a] == ["e1", "e3"]
    assert [s.experiment for s in b] == ["e2", "e4", "e0"]
    assert run.plan_lanes(steps[:1], 2, seconds)[1] == []


def test_steps_with_nothing_left_to_train_go_first_so_their_records_are_kept_at_once():
    steps = [reproduce.Step(f"e{i}", f"d{i}") for i in range(5)]
    seconds = dict(zip(steps, (30.0, 0.0, 20.0, 0.0, 10.0), strict=True))
    a, b = run.plan_lanes(steps, 2, seconds)
    assert [s.experiment for s in a] == ["e1", "e3", "e0"]  # finished first, then the longest
    assert [s.experiment for s in b] == ["e2", "e4"]


def test_lanes_go_to_the_first_cores_of_the_affinity_mask(monkeypatch):
    from cnn_jax import cpus

    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {5, 3, 7}, raising=False)
    assert cpus.usable_core_ids() == [3, 5, 7] and cpus.usable_cores() == 3
    assert run.lane_cores(2) == [3, 5]


def test_dry_run_in_two_lanes_prints_every_step_once_on_its_core(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    monkeypatch.setattr(run, "lane_cores", lambda lanes: [0, 1][:lanes])
    assert cli.main(["all", "--runs", str(tmp_path), "--dry-run", "--lanes", "2"]) == 0
    text = capsys.readouterr().out
    units = [u for _, st in reproduce.steps_of("all") for s in st
             for u in reproduce.job_steps(s, ())]  # a sweep's jobs each a run of its own
    assert len(units) > len([s for _, st in reproduce.steps_of("all") for s in st])
    for unit in units:
        assert len([ln for ln in text.splitlines()
                    if ln.startswith("== [core ") and f"] {unit.name}:" in ln]) == 1, unit.name
    assert text.count("lane on core 0:") == 1 and text.count("lane on core 1:") == 1
    assert not tmp_path.joinpath("reproduce.jsonl").exists()
    assert cli.main(["all", "--runs", str(tmp_path), "--dry-run", "--lanes", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lanes 3 must be between 1 and the 2 CPU cores" in err


def test_lanes_are_planned_by_the_time_left_so_finished_jobs_weigh_nothing(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run, "lane_cores", lambda lanes: [0, 1][:lanes])
    jobs = reproduce.job_steps(_row(8), ())
    for job in jobs[:3]:  # nets 0-2 finished: nets 3 and 4 are what is left, one per lane
        _finished_run(tmp_path / job.run_dir, reproduce.step_config(job, ()))
    for job in jobs:  # each net's kept record: 1,000 s
        _kept_record(reproduce.kept_dir() / job.run_dir, reproduce.step_config(job, ()), 1000.0)
    assert run.run_lanes([_row(8)], 2, tmp_path, (), dry_run=True) == {}
    lanes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("lane on core")]
    expected = "expected 17 min left (its kept record; measured on cpu (host box) on 2026-12-04)"
    assert [ln.split("; ", 1)[1] for ln in lanes] == [expected] * 2
    assert ["job 3" in lanes[0], "job 4" in lanes[1]] == [True, True]


def test_an_expected_time_names_the_cpu_model_and_cores_its_record_was_measured_on():
    provenance = {"device_kind": "cpu", "hostname": "vm", "started_at": "2026-12-07T05:00:00",
                  "cpu_model": "AMD EPYC 7B13", "usable_cores": 2}
    assert reproduce.machine_of(provenance) == "AMD EPYC 7B13, 2 cores (host vm) on 2026-12-07"
    one_core = {**provenance, "usable_cores": 1}
    assert reproduce.machine_of(one_core).startswith("AMD EPYC 7B13, 1 core (host vm)")
    older = {"device_kind": "cpu", "hostname": "box"}  # written before records named the CPU
    assert reproduce.machine_of(older) == "cpu (host box)"


def test_a_sweep_step_in_lanes_is_a_single_run_per_job_into_hydras_job_dirs(tmp_path):
    row8 = _row(8)
    jobs = reproduce.job_steps(row8, ("train.resume=false",))
    assert [j.run_dir for j in jobs] == [f"nielsen/row8/{n}" for n in range(5)]
    assert [j.name for j in jobs] == [f"nielsen/row8 job {n}" for n in range(5)]
    assert reproduce.train_command(jobs[3], tmp_path, ()) == [
        "python", "-m", "experiments.train", "experiment=nielsen/row8", "train.resume=auto",
        "seed=3", "train.seeds=1", "train.resume=False",  # the command line's resume wins
        f"hydra.run.dir={tmp_path}/nielsen/row8/3"]
    assert reproduce.step_config(jobs[3], ())["seed"] == 3
    assert reproduce.job_steps(_row(5), ()) == [_row(5)]


def test_a_sweeps_jobs_without_records_share_its_records_time_by_images_times_flops(tmp_path):
    row7 = _row(7)
    jobs = reproduce.job_steps(row7, ())
    _kept_record(reproduce.kept_dir() / "nielsen" / "row7" / "9", reproduce.step_config(
        jobs[0], ()), 300.0)  # a record of the same row, none of these jobs'
    seconds = [p.estimate.seconds for p in reproduce.plan_runs(row7, tmp_path, ())]
    assert seconds[0] == pytest.approx(300.0)
    # forward FLOPs by hand: conv 5x5x1x20 on 24x24, pool 2x2 to 12x12, conv 5x5x20x40 on 8x8,
    # pool to 4x4 (a pool op per window element, an op per output for bias and activation),
    # then 640 -> w -> w -> 10 (2 per multiply-add, 2 per unit)
    conv = (2 * 25 * 20 * 576 + 4 * 144 * 20 + 2 * 144 * 20
            + 2 * 25 * 20 * 40 * 64 + 4 * 16 * 40 + 2 * 16 * 40)
    flops = [conv + 2 * (640 * w + w * w + w * 10) + 2 * (2 * w + 10) for w in (100, 300, 1000)]
    images = 1 * 60 * 250_000  # 1 seed x 60 epochs x the expanded images
    assert [reproduce.job_cost(reproduce.step_config(j, ())) for j in jobs] == pytest.approx(
        [images * f for f in flops])
    assert [s / sum(seconds) for s in seconds] == pytest.approx([f / sum(flops) for f in flops])
    assert seconds[0] < seconds[1] < seconds[2] and seconds[2] > 1.9 * seconds[0]
    # an expanded job weighs five times the same job on the plain images
    plain = reproduce.step_config(reproduce.Step("nielsen/row5", "", ("data.expand=false",)), ())
    expanded = reproduce.step_config(reproduce.Step("nielsen/row5", ""), ())
    assert reproduce.job_cost(expanded) == pytest.approx(5 * reproduce.job_cost(plain))


def test_lanes_run_each_job_and_a_job_that_cannot_run_fails_its_sweep_step(
        tmp_path, monkeypatch):
    calls, groups = [], []
    monkeypatch.setenv(SWEEP_GROUP_ENV, "a group of the shell's, never a step's")

    def fake_call(argv, cwd, env):
        calls.append(argv)
        groups.append(env.get(SWEEP_GROUP_ENV))
        seed = next((a for a in argv if a.startswith("seed=")), None)
        if seed == "seed=2":  # failed in training: its failure record, as a sweep would keep
            job = Path(argv[-1].split("=", 1)[1])
            job.mkdir(parents=True)
            config = reproduce.step_config(reproduce.job_steps(_row(8), ())[2], ())
            (job / "config.json").write_text(json.dumps(config))
            (job / "metrics.json").write_text(json.dumps({"status": "failed"}))
            return 1
        return 1 if seed == "seed=3" else 0  # job 3 refused: no record of its own

    monkeypatch.setattr(run.subprocess, "call", fake_call)
    monkeypatch.setattr(run, "lane_cores", lambda lanes: [0, 0][:lanes])
    monkeypatch.setattr(run, "pinned", lambda command, core: command)
    failed = run.run_lanes([_row(8), _row(1)], 2, tmp_path, (), dry_run=False)
    assert list(failed) == [_row(8)] and "nielsen/row8 job 3 failed" in str(failed[_row(8)])
    assert all(c[-1].startswith(f"hydra.run.dir={tmp_path}/nielsen/row") for c in calls)
    # jobs go 0, 2, 4 to one lane and 1, 3, then row 1 to the other: that lane stops at job 3
    ran = sorted(next(a for a in c if a.startswith(("seed=", "experiment=nielsen/row1")))
                 for c in calls)
    assert ran == ["seed=0", "seed=1", "seed=2", "seed=3", "seed=4"]
    # row 8's jobs log to W&B in their sweep's group, as in the sweep; a single run in none
    assert groups == [f"{tmp_path}/nielsen/row8"] * 5
    assert SWEEP_GROUP_ENV not in run.job_environment(_row(1), tmp_path)


PRINT_CORES = "import os; print(sorted(os.sched_getaffinity(0)))"
pinning = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")


def _cores_of(pinned_argv: list[str]) -> str:
    """What a tiny real command run under the trampoline of `pinned_argv` reports as its cores."""
    trampoline = pinned_argv[:3]
    assert trampoline[:2] == [sys.executable, "-c"]
    return subprocess.run([*trampoline, sys.executable, "-c", PRINT_CORES], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


@pinning
def test_the_trampoline_pins_the_real_command_to_the_core():
    for core in run.usable_core_ids()[:2]:
        argv = run.pinned([sys.executable, "-c", PRINT_CORES], core)
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
        assert out.stdout.strip() == f"[{core}]"


@pinning
def test_a_lane_pins_its_process_to_its_core_and_a_failure_stops_after_every_lane(
        tmp_path, monkeypatch, capsys):
    ids = run.usable_core_ids()
    cores = [ids[0], ids[-1]]  # two cores where the machine has them
    calls = []

    def fake_call(argv, cwd, env):  # no preexec_fn: unsafe with the lanes' threads
        calls.append(argv)
        return 3 if "experiment=nielsen/row4" in argv else 0

    monkeypatch.setattr(run.subprocess, "call", fake_call)
    monkeypatch.setattr(run, "lane_cores", lambda lanes: cores[:lanes])
    steps = [s for s in dict(reproduce.steps_of("nielsen"))["nielsen"]
             if s.experiment in ("nielsen/row1", "nielsen/row2", "nielsen/row4")]
    # row 4 (longest) alone on the first core and fails; rows 2 and 1 on the other still run
    failed = run.run_lanes(steps, 2, tmp_path, (), dry_run=False)
    assert [s.experiment for s in failed] == ["nielsen/row4"]
    assert "nielsen/row4 failed with exit code 3" in str(next(iter(failed.values())))
    assert len(calls) == 3
    for argv in calls:  # the trampoline, then the step's own command
        step = next(s for s in steps if f"experiment={s.experiment}" in argv)
        assert argv[3:] == [sys.executable, *reproduce.train_command(step, tmp_path, ())[1:]]
    pins = {next(a for a in argv if a.startswith("experiment=")): _cores_of(argv)
            for argv in calls}
    assert pins == {"experiment=nielsen/row4": f"[{cores[0]}]",
                    "experiment=nielsen/row2": f"[{cores[1]}]",
                    "experiment=nielsen/row1": f"[{cores[1]}]"}
    log = [json.loads(line) for line in (tmp_path / "reproduce.jsonl").read_text().splitlines()]
    assert sorted((r["step"], r["core"], r["exit"]) for r in log) == [
        ("nielsen/row1", cores[1], 0), ("nielsen/row2", cores[1], 0),
        ("nielsen/row4", cores[0], 3)]


def _raise_subprocess_error(argv, cwd, **_):
    raise subprocess.SubprocessError("fork failed\nsecond line")


@pytest.mark.parametrize("breakage", ["subprocess", "log"])
def test_any_error_of_a_lane_step_is_its_failure_and_a_one_line_exit_1(
        breakage, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    if breakage == "subprocess":
        monkeypatch.setattr(run.subprocess, "call", _raise_subprocess_error)
        needle = "nielsen/row1 failed: SubprocessError: fork failed"
    else:  # reproduce.jsonl cannot be written (OSError)
        monkeypatch.setattr(run.subprocess, "call", lambda argv, cwd, **_: 0)
        (runs / reproduce.LOG).mkdir(parents=True)
        needle = "nielsen/row1 failed: IsADirectoryError"
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    monkeypatch.setattr(run, "lane_cores", lambda lanes: [0, 1][:lanes])
    written = []
    monkeypatch.setattr(publish, "write_docs", lambda name, *a: written.append(name))
    assert cli.main(["nielsen/row1", "--runs", str(runs), "--lanes", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and written == []
    failed = run.run_lanes([_row(1)], 2, runs, (), dry_run=False)
    assert [s.experiment for s in failed] == ["nielsen/row1"]
    assert isinstance(failed[_row(1)], RuntimeError) and needle in str(failed[_row(1)])


def test_in_one_lane_any_error_of_a_step_is_a_one_line_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run.subprocess, "call", _raise_subprocess_error)
    written = []
    monkeypatch.setattr(publish, "write_docs", lambda name, *a: written.append(name))
    assert cli.main(["nielsen/row1", "--runs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == "error: nielsen/row1 failed: SubprocessError: fork failed\n" and written == []


def _fake_sweep(job_config_overrides: tuple[str, ...]):
    """A fake `train -m` of cnn_vs_fc: one finished job whose config.json is the job's config
    with `job_config_overrides` (a job refused for another config's run keeps that run)."""
    from cnn_jax.config import to_dict
    from experiments.compose import compose_config

    def call(argv, cwd, **_):
        sweep = Path(next(a for a in argv if a.startswith("hydra.sweep.dir=")).split("=", 1)[1])
        job = [a for a in argv[4:] if not a.startswith("hydra.")] + ["model=fc30"]
        (sweep / "0" / ".hydra").mkdir(parents=True, exist_ok=True)
        (sweep / "0" / ".hydra" / "overrides.yaml").write_text(
            "".join(f"- {o}\n" for o in job))
        _finished_run(sweep / "0", to_dict(compose_config(*job, *job_config_overrides)))
        return 0

    return call


def test_a_sweep_job_left_holding_another_configs_run_fails_the_step(
        tmp_path, monkeypatch, capsys):
    written = []
    monkeypatch.setattr(publish, "write_docs", lambda name, *a: written.append(name))
    # the job finished with this config (or skipped itself): the docs are written
    monkeypatch.setattr(run.subprocess, "call", _fake_sweep(("train.progress=false",)))
    assert cli.main(["cnn_vs_fc", "--runs", str(tmp_path / "same")]) == 0
    assert written == ["cnn_vs_fc"]
    # the job dir keeps a 3-epoch run of the experiment file that now says 8: no docs
    monkeypatch.setattr(run.subprocess, "call", _fake_sweep(("train.epochs=3",)))
    assert cli.main(["cnn_vs_fc", "--runs", str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cnn_vs_fc: 1 job dir(s) hold a run of another config" in err
    assert "train.epochs: 3 -> 8" in err and written == ["cnn_vs_fc"]
    # a job of this config that failed is no stale job: its failure goes into the table
    fake = _fake_sweep(("train.progress=false",))

    def failing(argv, cwd, **kw):
        fake(argv, cwd, **kw)
        job = Path(next(a for a in argv if a.startswith("hydra.sweep.dir=")).split("=", 1)[1])
        (job / "0" / "metrics.json").write_text(json.dumps({"status": "failed"}))
        return 0

    monkeypatch.setattr(run.subprocess, "call", failing)
    assert cli.main(["cnn_vs_fc", "--runs", str(tmp_path / "failed")]) == 0
    assert written == ["cnn_vs_fc", "cnn_vs_fc"]


def test_finished_runs_are_kept_under_out_and_restored_into_a_new_runs_dir(
        tmp_path, monkeypatch, capsys):
    written, calls = [], []
    monkeypatch.setattr(publish, "write_docs", lambda name, *a: written.append(name))
    fake = _fake_sweep(("train.progress=false",))
    monkeypatch.setattr(run.subprocess, "call",  # a single run: trains nothing here
                        lambda argv, cwd, **kw: calls.append(argv) or (
                            fake(argv, cwd, **kw) if argv[3] == "-m" else 0))
    out = tmp_path / "out"
    assert cli.main(["cnn_vs_fc", "--runs", str(tmp_path / "a"), "--out", str(out)]) == 0
    kept = out / "runs" / "cnn_vs_fc" / "0"
    assert sorted(p.name for p in kept.rglob("*")) == ["config.json", "metrics.json"]
    assert "kept the records of 1 finished run(s)" in capsys.readouterr().out
    # a single run kept there is restored into another runs dir and not trained again
    _finished_run(out / "runs" / "nielsen" / "row1", reproduce.step_config(_row(1), ()))
    runs = tmp_path / "b"
    assert cli.main(["nielsen/row1", "--runs", str(runs), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "nielsen/row1: 1 finished run(s) restored from" in text
    assert f"finished already: {runs / 'nielsen' / 'row1'}" in text and len(calls) == 1
    # ... but not into a runs dir whose run there would be another config's (another budget)
    other = tmp_path / "c"
    assert cli.main(["nielsen/row1", "--runs", str(other), "--out", str(out),
                           "train.epochs=2"]) == 0
    assert len(calls) == 2 and "restored" not in capsys.readouterr().out
    # --keep copies what finished in a runs dir now, training nothing
    _finished_run(runs / "nielsen" / "row2", {"seed": 0, "train": {"epochs": 1}})
    assert cli.main(["nielsen", "--runs", str(runs), "--out", str(out), "--keep"]) == 0
    assert (out / "runs" / "nielsen" / "row2" / "config.json").is_file() and len(calls) == 2
    assert written == ["cnn_vs_fc", "nielsen", "nielsen"]


def test_train_resume_false_runs_a_finished_single_run_again(tmp_path):
    config = json.loads(json.dumps(reproduce.step_config(_row(1), ())))
    _finished_run(tmp_path / "nielsen" / "row1", config)
    assert reproduce.is_finished(_row(1), tmp_path, ())
    assert not reproduce.is_finished(_row(1), tmp_path, ("train.resume=false",))


def test_a_nielsen_table_that_cannot_be_written_fails_the_docs(tmp_path):
    row1 = tmp_path / "nielsen" / "row1"
    row1.mkdir(parents=True)
    (row1 / "config.json").write_text("{")
    (row1 / "metrics.jsonl").write_text(json.dumps({"epoch": 1}) + "\n")
    with pytest.raises(RuntimeError, match="nielsen table: .* not written"):
        publish.write_docs("nielsen", tmp_path, tmp_path / "out", False)


@pytest.mark.parametrize("args, where", [
    (["--budget", "tiny"], "runs/results"), ([], "DOCS"),
    (["--budget", "tiny", "--out", "OUT"], "OUT")])
def test_docs_of_a_smaller_budget_go_under_the_runs_dir_unless_out_is_given(
        args, where, tmp_path, capsys):
    argv = ["all", "--runs", str(tmp_path / "runs"), "--dry-run",
            *[str(tmp_path / a) if a == "OUT" else a for a in args]]
    assert cli.main(argv) == 0
    out = plan.DOCS if where == "DOCS" else where if where.startswith("/") else (
        f"{tmp_path}/{where}")
    text = capsys.readouterr().out
    assert f"results into {out}\n" in text and f"--out {out}/nielsen_ch6.md" in text
    assert f"--out {out}/cnn_vs_fc " in text and f"--out {out}/ablation_dropout " in text
    if args == ["--budget", "tiny"]:
        assert f"the docs go to {out}, not {plan.DOCS}" in text


def test_in_lanes_a_failed_step_skips_only_its_results_docs(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "run_lanes", lambda steps, *a: {
        next(s for s in steps if s.experiment == "ablation_stride"): RuntimeError("stride died")})
    written = []
    monkeypatch.setattr(publish, "write_docs", lambda name, *a: written.append(name))
    with pytest.raises(RuntimeError, match="stride died"):
        run.reproduce("all", tmp_path, tmp_path / "out", (), False, lanes=2)
    assert written == [t for t in reproduce.TARGETS[:-1] if t != "ablation_stride"]


@pytest.mark.parametrize("row, experiment", [("5", "nielsen/row5"), ("8", "nielsen/row8"),
                                             ("9", "nielsen/row8"), ("6", "nielsen/row6")])
def test_a_row_target_runs_only_that_row_then_the_table(row, experiment, tmp_path, capsys):
    assert cli.main([f"nielsen/row{row}", "--runs", str(tmp_path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    commands = [ln.strip() for ln in text.splitlines() if "experiments.train" in ln]
    assert len(commands) == 1 and f"experiment={experiment} " in commands[0]
    sweep = row in ("6", "8", "9")
    assert f"hydra.{'sweep' if sweep else 'run'}.dir={tmp_path}/{experiment}" in commands[0]
    assert "python -m experiments.nielsen_table" in text


def test_a_list_target_runs_each_listed_step_then_each_results_docs(tmp_path, capsys):
    assert cli.main(["nielsen/row7,cnn_vs_fc,nielsen/row5", "--runs", str(tmp_path),
                           "--dry-run"]) == 0
    text = capsys.readouterr().out
    ran = [ln.split("experiment=")[1].split()[0] if "experiment=" in ln else
           ln.split("python -m ")[1].split()[0] for ln in text.splitlines() if "python -m " in ln]
    assert ran == ["nielsen/row7", "nielsen/row5", "experiments.nielsen_table", "cnn_vs_fc",
                   "experiments.table"]


@pytest.mark.parametrize("ablation", ["ablation_stride", "cnn_vs_fc", "ablation_dropout"])
def test_a_budget_check_runs_its_own_sweep_and_tables_it_beside_its_ablations_docs(
        ablation, tmp_path, capsys):
    assert cli.main([f"{ablation}/budget_check", "--runs", str(tmp_path), "--out",
                     str(tmp_path / "out"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"-m experiment=budget_check/{ablation} " in text
    assert f"hydra.sweep.dir={tmp_path}/budget_check/{ablation}" in text
    assert (f"python -m experiments.table {tmp_path}/budget_check/{ablation} --out "
            f"{tmp_path}/out/{ablation}/budget_check ") in text
    assert ": not started, 0/16 epochs" in text  # twice the ablation's 8


@pytest.mark.parametrize("argv, needle", [
    (["nope", "--runs", "x"], "target 'nope' is not one of nielsen, ablation_pooling"),
    (["nielsen/row10", "--runs", "x"], "nielsen/row1 .. nielsen/row9"),
    (["cnn_vs_fc,nielsen/row0", "--runs", "x"], "target 'nielsen/row0' is not one of"),
    (["cnn_vs_fc", "--runs", "x", "--budget", "huge"], "--budget 'huge' is not one of full, tiny"),
    (["cnn_vs_fc", "--runs", "x", "--dry-run", "train.nope=1"], "train.nope=1"),
])
def test_bad_input_is_a_one_line_error(argv, needle, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def _reproduce(runs: Path, out: Path, mnist_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.reproduce", "cnn_vs_fc", "--runs", str(runs),
           "--out", str(out), "--budget", "tiny", "model=fc30,nielsen_fc", "train.seeds=2",
           "train.checkpoint=false", f"data.dir={mnist_dir}", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_tiny_ablation_end_to_end(tmp_path, mnist_dir, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    first = _reproduce(runs, out, mnist_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "cnn_vs_fc: expected" in first.stdout
    table = pd.read_csv(out / "cnn_vs_fc" / "table.csv")
    assert sorted(table["model"]) == ["fc30", "nielsen_fc"] and list(table["n"]) == [2, 2]
    assert {"delta_vs_ref", "delta_ci_sim", "p_holm"} <= set(table.columns)
    assert (out / "cnn_vs_fc" / "table.md").read_text().startswith("## Ablation: cnn_vs_fc")
    assert (out / "cnn_vs_fc" / "ablation.png").stat().st_size > 0
    (log,) = (runs / reproduce.LOG).read_text().splitlines()
    assert json.loads(log)["exit"] == 0 and json.loads(log)["step"] == "cnn_vs_fc"
    assert len(list((runs / "cnn_vs_fc").rglob("metrics.json"))) == 2
    for job in ("0", "1"):  # each finished job's records kept beside the tables
        assert (out / "runs" / "cnn_vs_fc" / job / "metrics.jsonl").read_text() == (
            runs / "cnn_vs_fc" / job / "metrics.jsonl").read_text()
    # ... from which the same table regenerates
    from experiments.table import write_outputs

    write_outputs(out / "runs" / "cnn_vs_fc", tmp_path / "again", "Ablation: cnn_vs_fc")
    assert (tmp_path / "again" / "table.csv").read_text() == (
        out / "cnn_vs_fc" / "table.csv").read_text()
    # --status finds each job Hydra launched, under its number, with the config it ran
    args = ["cnn_vs_fc", "--runs", str(runs), "--budget", "tiny", "model=fc30,nielsen_fc",
            "train.seeds=2", "train.checkpoint=false", f"data.dir={mnist_dir}", "--status"]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"== cnn_vs_fc ({runs / 'cnn_vs_fc'}, 2 jobs): nothing left to train",
        "   0 model=fc30: finished, 1/1 epochs", "   1 model=nielsen_fc: finished, 1/1 epochs"]
    assert cli.main([*args, "train.seeds=3"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "   0 model=fc30: another config (train.seeds: 2 -> 3), 1/1 epochs")


@pytest.mark.slow
def test_tiny_ablation_relaunch_skips_it_then_another_config_fails_and_trains_nothing(
        tmp_path, mnist_dir):
    # (the default suite: the CLI's relaunch skip in test_sweep.py, the refusal with a fake sweep)
    runs, out = tmp_path / "runs", tmp_path / "out"
    assert _reproduce(runs, out, mnist_dir).returncode == 0
    stamps = {p: p.stat().st_mtime_ns for p in (runs / "cnn_vs_fc").rglob("metrics.json")}
    second = _reproduce(runs, out, mnist_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("(finished earlier)") == 2, second.stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # each job refuses the old run, the step fails, and the table stays the first run's
    docs = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    third = _reproduce(runs, out, mnist_dir, "train.epochs=2")
    assert third.returncode == 1, third.stdout[-3000:] + third.stderr[-3000:]
    assert "cnn_vs_fc: 2 job dir(s) hold a run of another config" in third.stderr
    assert "train.epochs: 1 -> 2" in third.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == docs


def test_a_lanes_line_is_one_write_so_lanes_never_interleave(monkeypatch):
    writes = []

    class Recorder:
        def write(self, text):
            writes.append(text)

        def flush(self):
            writes.append("<flush>")

    monkeypatch.setattr(sys, "stdout", Recorder())
    reproduce.say("== [core 0] job 1: expected 1 min\n   python -m experiments.train")
    assert writes == ["== [core 0] job 1: expected 1 min\n   python -m experiments.train\n",
                      "<flush>"]


@pytest.mark.parametrize("launcher", ["joblib", "slurm"])
def test_a_launchers_sweep_command_passes_the_command_lines_own_checks(launcher, tmp_path):
    from experiments.preflight import check

    (step,) = dict(reproduce.steps_of("ablation_stride"))["ablation_stride"]
    argv = run.launch_command(step, tmp_path, reproduce.BUDGETS["tiny"],
                              run.launcher_overrides(launcher, 2))
    assert f"hydra/launcher={launcher}" in argv and check(argv[3:]) is None, argv
    assert run.launch_command(_row(1), tmp_path, (), run.launcher_overrides(launcher, 2)) == (
        reproduce.train_command(_row(1), tmp_path, ()))  # a single run: no launcher


@pytest.mark.parametrize("target", ["ablation_pooling", "ablation_stride", "nielsen"])
def test_every_command_a_lane_runs_passes_the_command_lines_own_checks(target, tmp_path):
    from experiments.preflight import check

    for _, steps in reproduce.steps_of(target):
        for step in steps:
            for job in reproduce.job_steps(step, ()):
                argv = reproduce.train_command(job, tmp_path, ())[3:]
                assert check(argv) is None, argv


def test_the_targets_are_the_experiment_files_marked_reproduce():
    from experiments.reproduce import targets

    marked = {p.experiment: p for p in targets.published()}
    # every marked file is a target; the files without a line (ablation, fast) are none
    checks = ("ablation_stride", "cnn_vs_fc", "ablation_dropout", "ablation_pooling")
    assert set(marked) == {"ablation_pooling", "ablation_stride", "ablation_dropout",
                           "cnn_vs_fc", *(f"nielsen/row{n}" for n in range(1, 10)),
                           *(f"budget_check/{a}" for a in checks)}
    in_order = ("nielsen", "ablation_pooling", "ablation_stride", "ablation_dropout", "cnn_vs_fc",
                *(f"{a}/budget_check" for a in checks), "all")
    assert in_order == reproduce.TARGETS
    assert marked["nielsen/row6"].overrides == ("width=300,1000", "train.seeds=1")
    assert dict(reproduce.steps_of("nielsen/row9")) == dict(reproduce.steps_of("nielsen/row8"))
    assert reproduce.TARGETS[1:-1] == reproduce.ABLATIONS


def _experiment_dir(root: Path, name: str, marker: str) -> Path:
    """A conf dir outside the project holding one experiment file: a 2-job sweep of seeds."""
    (root / "experiment").mkdir(parents=True, exist_ok=True)
    (root / "experiment" / f"{name}.yaml").write_text(
        f"# @package _global_\n{marker}\ndefaults:\n  - ablation\n  - override /model: fc30\n"
        "hydra:\n  sweeper:\n    params:\n      seed: 0,1\n")
    return root


def test_a_new_marked_experiment_file_is_a_target_with_no_code_edit(tmp_path, capsys):
    from experiments.preflight import check

    conf = _experiment_dir(tmp_path / "conf", "ablation_new", "# reproduce: ablation_new")
    search = f"hydra.searchpath=[file://{conf}]"
    runs = tmp_path / "runs"
    assert cli.main(["ablation_new", "--runs", str(runs), "--dry-run", search]) == 0
    text = capsys.readouterr().out
    assert (f"experiment=ablation_new train.resume=auto {shlex.quote(search)} "
            f"hydra.sweep.dir={runs}/ablation_new") in text
    assert f"--out {plan.DOCS}/ablation_new --title 'Ablation: ablation_new'" in text
    (step,) = dict(reproduce.steps_of("ablation_new", (search,)))["ablation_new"]
    assert step.sweep and [c["seed"] for _, _, c in reproduce.plan.step_runs(
        step, runs, (search,))] == [0, 1]
    assert [n for n, _ in reproduce.steps_of("all", (search,))][-1] == "ablation_new"
    # the training command its step runs passes the CLI's own checks
    assert check(reproduce.train_command(step, runs, (search,))[3:]) is None
    # without the search path it is no target: the error lists what is
    assert cli.main(["ablation_new", "--runs", str(runs), "--dry-run"]) == 2
    assert "target 'ablation_new' is not one of nielsen, " in capsys.readouterr().err


@pytest.mark.parametrize("marker, needle", [
    ("# reproduce:", "must read RESULT [OVERRIDE ...]"),
    ("# reproduce: all", "not 'all'"),
    ("# reproduce: abl seed", "'seed' is neither an override"),
    ("# reproduce: abl --order x", "--order 'x' is not a whole number"),
    ("# reproduce: abl --same-as nope", "--same-as 'nope' is not a marked experiment"),
])
def test_a_bad_reproduce_line_is_a_one_line_error_naming_the_file(marker, needle, tmp_path,
                                                                  capsys):
    conf = _experiment_dir(tmp_path / "conf", "abl", marker)
    assert cli.main(["abl", "--runs", str(tmp_path), "--dry-run",
                     f"hydra.searchpath=[file://{conf}]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_results_go_in_the_order_their_lines_give_then_by_name():
    from experiments.reproduce import targets

    def marked(text: str):
        return targets.read_marker("x", text, "x.yaml")

    files = (marked("# reproduce: b"), marked("# reproduce: z --order 2"),
             marked("# reproduce: a"), marked("# reproduce: y --order 1"))
    assert targets.result_order(files) == ["y", "z", "a", "b"]
    assert marked("# python -m experiments.train\n") is None
    assert marked("#reproduce: r seed=0,1 --same-as e") == targets.Published(
        "x", "r", ("seed=0,1",), "e", None)


def _kept_stride_records() -> list:
    (step,) = dict(reproduce.steps_of("ablation_stride"))["ablation_stride"]
    jobs = reproduce.job_steps(step, ())
    for num, job in enumerate(jobs):
        _kept_record(reproduce.kept_dir() / job.run_dir, reproduce.step_config(job, ()),
                     60.0 * (num + 1))
    plan._kept_costs.cache_clear()
    return jobs


def test_a_joblib_dry_run_lists_the_sweeps_jobs_as_the_launcher_runs_them(tmp_path, capsys):
    jobs = _kept_stride_records()
    runs = tmp_path / "runs"
    assert cli.main(["ablation_stride", "--runs", str(runs), "--out", str(tmp_path / "out"),
                     "--dry-run", "--launcher", "joblib", "--lanes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "launcher joblib (2 at once)" in lines[0]
    command = next(ln for ln in lines if "experiments.train" in ln).split()
    assert command[2:5] == ["experiments.train", "-m", "experiment=ablation_stride"]
    assert {"hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "train.concurrent_seeds=1",
            run.ONE_THREAD_POOL} <= set(command)
    assert command[-1] == f"hydra.sweep.dir={runs}/ablation_stride"
    # jobs of 1, 2, ... 6 min in order, each to the first free of 2 workers: 1+3+5, 2+4+6 min
    assert ("   joblib, 2 jobs at once: expected 12 min of wall time (in job order, each to the "
            "first free worker)") in lines
    listed = [ln for ln in lines if ln.startswith("   joblib job ")]
    assert len(listed) == len(jobs) == 6
    for num, (line, job) in enumerate(zip(listed, jobs, strict=True)):
        varied = " ".join(o for o in job.overrides if o.startswith(("conv_stride=", "pooling=")))
        assert line == (f"   joblib job {num}: {varied}: not started, 0/8 epochs; expected "
                        f"{reproduce.duration(60.0 * (num + 1))} (its kept record)")
    assert not runs.exists()


def test_a_dry_run_lists_a_sweeps_jobs_under_the_basic_launcher_too(tmp_path, capsys):
    _kept_stride_records()
    assert cli.main(["ablation_stride", "--runs", str(tmp_path), "--out", str(tmp_path / "out"),
                     "--dry-run"]) == 0
    listed = [ln for ln in capsys.readouterr().out.splitlines() if " job " in ln]
    assert [ln.split(":")[0] for ln in listed] == [f"   basic job {n}" for n in range(6)]
    assert listed[5].endswith(f"expected {reproduce.duration(360.0)} (its kept record)")


def test_a_slurm_dry_run_launches_the_sweep_through_the_slurm_launcher(tmp_path, capsys):
    assert cli.main(["ablation_stride", "--runs", str(tmp_path), "--dry-run", "--launcher",
                     "slurm", "hydra.launcher.partition=cpu"]) == 0
    text = capsys.readouterr().out
    command = next(ln for ln in text.splitlines() if "experiments.train" in ln).split()
    assert "hydra/launcher=slurm" in command and "hydra.launcher.partition=cpu" in command
    assert "hydra.launcher.n_jobs" not in text and text.count("   slurm job ") == 6


def test_the_launcher_and_its_jobs_at_once_default_from_each_other(monkeypatch):
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    assert cli.checked_launcher(None, None) == ("basic", 1)
    assert cli.checked_launcher(None, 1) == ("basic", 1)
    assert cli.checked_launcher(None, 2) == ("lanes", 2)
    assert cli.checked_launcher("lanes", None) == ("lanes", 2)  # every usable core
    assert cli.checked_launcher("joblib", None) == ("joblib", 2)
    assert cli.checked_launcher("joblib", 1) == ("joblib", 1)
    assert cli.checked_launcher("slurm", None) == ("slurm", 1)


@pytest.mark.parametrize("args, needle", [
    (["--launcher", "dask"], "--launcher 'dask' is not one of basic, lanes, joblib, slurm"),
    (["--launcher", "basic", "--lanes", "2"], "--lanes 2 is for the lanes and joblib launchers"),
    (["--launcher", "slurm", "--lanes", "2"], "hydra.launcher.array_parallelism"),
    (["--launcher", "joblib", "--lanes", "0"], "--lanes 0 must be between 1 and the"),
])
def test_a_bad_launcher_is_a_one_line_error(args, needle, tmp_path, capsys):
    assert cli.main(["cnn_vs_fc", "--runs", str(tmp_path), "--dry-run", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_under_joblib_a_sweep_is_one_launch_and_a_single_run_its_own_process(
        tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(run.subprocess, "call", lambda argv, cwd, env: calls.append(argv) or 0)
    monkeypatch.setattr(publish, "write_docs", lambda *a: None)
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    assert cli.main(["nielsen/row1,cnn_vs_fc", "--runs", str(tmp_path), "--out",
                     str(tmp_path / "out"), "--launcher", "joblib"]) == 0
    row1, sweep = calls
    assert not any("launcher" in a for a in row1)  # a single run: as under basic
    assert sweep[3:5] == ["-m", "experiment=cnn_vs_fc"]
    assert "hydra/launcher=joblib" in sweep and "hydra.launcher.n_jobs=2" in sweep  # the cores
    log = [json.loads(ln) for ln in (tmp_path / reproduce.LOG).read_text().splitlines()]
    assert [r["launcher"] for r in log] == [None, "joblib"]


@pytest.mark.slow
def test_tiny_joblib_sweep_of_two_jobs_trains_and_keeps_records_then_skips_them(
        tmp_path, mnist_dir):
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["--launcher", "joblib", "--lanes", "2"]
    first = _reproduce(runs, out, mnist_dir, *argv)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "launcher joblib (2 at once)" in first.stdout
    for job in ("0", "1"):
        record = json.loads((out / "runs" / "cnn_vs_fc" / job / "metrics.json").read_text())
        assert record["status"] == "ok" and "hydra/launcher=joblib" in (
            record["provenance"]["command"])
    assert sorted(pd.read_csv(out / "cnn_vs_fc" / "table.csv")["model"]) == ["fc30", "nielsen_fc"]
    stamps = {p: p.stat().st_mtime_ns for p in (runs / "cnn_vs_fc").rglob("metrics.json")}
    again = _reproduce(runs, out, mnist_dir, *argv)
    assert again.returncode == 0 and again.stdout.count("(finished earlier)") == 2, again.stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
