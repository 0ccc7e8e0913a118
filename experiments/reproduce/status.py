"""Where each run of a step stands in a runs dir (`reproduce --status`)."""

from __future__ import annotations

from pathlib import Path

from experiments.reproduce.plan import RESTORED, Step, plan_runs, time_text


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
