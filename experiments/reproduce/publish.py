"""The records and docs of a result: keep its finished runs' records under OUT/runs (and
restore them into a runs dir that lacks them), then write its tables and figure or Nielsen's
table into OUT."""

from __future__ import annotations

from pathlib import Path

from cnn_jax.errors import first_line
from cnn_jax.results import archive
from experiments.reproduce.log import say
from experiments.reproduce.plan import Step, step_runs


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


def write_docs(name: str, runs: Path, out: Path, dry_run: bool, source: str | None = None
               ) -> None:
    """Rewrite the result's tables and figure (ablation; from its sweep dir under `runs`,
    `source`, by default the result's name) or Nielsen's table."""
    if name == "nielsen":
        target = out / "nielsen_ch6.md"
        print(f"== table: python -m experiments.nielsen_table {runs / 'nielsen'} --out {target}")
        if not dry_run:
            from experiments.nielsen_table import main as nielsen_main

            if nielsen_main([str(runs / "nielsen"), "--out", str(target)]) != 0:
                raise RuntimeError(f"nielsen table: {target} not written (the error above)")
        return
    sweep = runs / (source or name)
    print(f"== table: python -m experiments.table {sweep} --out {out / name} "
          f"--title 'Ablation: {name}'", flush=True)
    if not dry_run:
        from experiments.table import write_outputs

        write_outputs(sweep, out / name, f"Ablation: {name}")
