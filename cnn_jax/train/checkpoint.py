"""Orbax checkpoints of a fit: latest state, best-validation params, epoch and history."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax

from cnn_jax.train.state import Progress, TrainState

if TYPE_CHECKING:  # orbax is imported only when a checkpoint is written or read
    import orbax.checkpoint as ocp


def checkpoint_manager(directory: str | Path) -> ocp.CheckpointManager:
    """A manager keeping only the latest epoch's checkpoint (orbax writes tmp dir + rename)."""
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def save_progress(manager: ocp.CheckpointManager, progress: Progress) -> None:
    """Save state, best params and history under step = epochs done."""
    import orbax.checkpoint as ocp

    trees = {"state": progress.state._asdict(), "best": progress.best_params}
    manager.save(
        progress.next_epoch,
        args=ocp.args.Composite(
            trees=ocp.args.StandardSave(trees),
            meta=ocp.args.JsonSave({"next_epoch": progress.next_epoch,
                                    "history": progress.history}),
        ),
    )
    manager.wait_until_finished()


def restore_progress(manager: ocp.CheckpointManager, template: Progress) -> Progress | None:
    """The latest saved Progress shaped like `template`, or None when nothing is saved."""
    import orbax.checkpoint as ocp

    step = manager.latest_step()
    if step is None:
        return None
    trees = {"state": template.state._asdict(), "best": template.best_params}
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, trees)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(trees=ocp.args.StandardRestore(abstract),
                                meta=ocp.args.JsonRestore()),
    )
    state = TrainState(**restored.trees["state"])
    meta = restored.meta
    return Progress(state, restored.trees["best"], meta["next_epoch"], list(meta["history"]))


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Raw arrays of a run's latest checkpoint: {"state": ..., "best": ...} and its meta."""
    import orbax.checkpoint as ocp

    if not Path(directory).is_dir():
        raise FileNotFoundError(f"no checkpoint under {directory}")
    with checkpoint_manager(directory) as manager:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {directory}")
        restored = manager.restore(
            step, args=ocp.args.Composite(trees=ocp.args.StandardRestore(),
                                          meta=ocp.args.JsonRestore())
        )
    return {**restored.trees, "meta": restored.meta}
