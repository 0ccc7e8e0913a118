"""Reproduce the published results: `python -m experiments.reproduce TARGET --runs DIR`
(its usage: `experiments/reproduce/__main__.py`).

targets.py: the experiment files marked `# reproduce: RESULT ...` (a new one is a new target);
plan.py: a target's steps, their runs or sweep jobs, and the expected time left from the kept
records; run.py: running the training commands, a sweep's jobs through a launcher (basic,
lanes, joblib, slurm); status.py: where each run stands; publish.py: keeping and restoring the
finished runs' records, writing the tables.
"""

from experiments.reproduce.log import LOG, say
from experiments.reproduce.plan import (
    BUDGETS,
    RESTORED,
    Estimate,
    Step,
    duration,
    is_finished,
    job_cost,
    job_steps,
    kept_dir,
    plan_runs,
    step_config,
    steps_of,
    time_text,
    train_command,
)

__all__ = ["BUDGETS", "LOG", "RESTORED", "Estimate", "Step", "duration", "is_finished", "job_cost",
           "job_steps", "kept_dir", "plan_runs", "say", "step_config", "steps_of", "time_text",
           "train_command"]


def __getattr__(name: str):  # TARGETS, ABLATIONS, STEPS, NIELSEN: read from conf/ when asked
    from experiments.reproduce import plan

    return getattr(plan, name)
