"""Orbax checkpoints of a fit: latest state, best-validation params, epoch and history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax

from cnn_jax.errors import first_line
from cnn_jax.train.state import Progress, TrainState

if TYPE_CHECKING:  # orbax is imported only when a checkpoint is written or read
    import orbax.checkpoint as ocp


KEEP = 2  # epochs' checkpoints kept: the latest, and one to fall back on if it is corrupt


class CorruptCheckpoint(ValueError):
    """No saved epoch of a run dir could be read."""


def checkpoint_manager(directory: str | Path) -> ocp.CheckpointManager:
    """A manager keeping the latest KEEP epochs' checkpoints (orbax writes tmp dir + rename)."""
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def save_progress(manager: ocp.CheckpointManager, progress: Progress) -> None:
    """Save state, best params and history under step = epochs done."""
    import orbax.checkpoint as ocp

    trees = {"state": progress.state._asdict(), "best": progress.best_params}
    manager.save(
        progress.epochs_done,
        args=ocp.args.Composite(
            trees=ocp.args.StandardSave(trees),
            meta=ocp.args.JsonSave({"epochs_done": progress.epochs_done,
                                    "history": progress.history}),
        ),
    )
    manager.wait_until_finished()


def _unreadable(err: BaseException) -> bool:
    """Whether a restore failed on the files themselves (bytes that do not decode, missing or
    truncated files), rather than on a tree that does not fit (another model's checkpoint)."""
    return isinstance(err, UnicodeDecodeError | json.JSONDecodeError | OSError | EOFError)


def restore_progress(manager: ocp.CheckpointManager, template: Progress,
                     warn: Callable[[str], None] | None = None) -> Progress | None:
    """The latest readable saved Progress shaped like `template`, or None when nothing is saved.

    When the latest checkpoint cannot be restored but an earlier one can, the latest is
    corrupt: a warning line (`warn`) says so and the earlier one is returned. When none can,
    CorruptCheckpoint if the files were unreadable, else the latest's own error (ValueError,
    TypeError or KeyError: a tree that does not fit `template`)."""
    steps = sorted(manager.all_steps(), reverse=True)
    errors: list[BaseException] = []
    for step in steps:
        try:
            progress = _restore_step(manager, step, template)
        except Exception as err:
            errors.append(err)
            continue
        if errors and warn is not None:
            warn(f"the checkpoint of epoch {steps[0]} is corrupt ({_describe(errors[0])}); "
                 f"resuming from epoch {step}")
        return progress
    if not errors:
        return None
    if any(_unreadable(e) for e in errors):
        raise CorruptCheckpoint(f"every saved epoch's checkpoint ({', '.join(map(str, steps))}) "
                                f"is corrupt ({_describe(errors[0])})") from errors[0]
    raise errors[0]


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {first_line(err)[:120]}"


def _restore_step(manager: ocp.CheckpointManager, step: int, template: Progress) -> Progress:
    import orbax.checkpoint as ocp

    trees = {"state": template.state._asdict(), "best": template.best_params}
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, trees)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(trees=ocp.args.StandardRestore(abstract),
                                meta=ocp.args.JsonRestore()),
    )
    state = TrainState(**restored.trees["state"])
    meta = restored.meta
    done = meta["epochs_done"] if "epochs_done" in meta else meta["next_epoch"]  # its old name
    return Progress(state, restored.trees["best"], done, list(meta["history"]))


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
