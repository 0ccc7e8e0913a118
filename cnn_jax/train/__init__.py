"""Optimizers, pure train / eval steps, the compiled programs (`build`) and the loop (`fit`)."""

from cnn_jax.train.compiles import CompileLog, count_compiles, enable_compile_cache
from cnn_jax.train.loop import FitResult, fit, run_epochs
from cnn_jax.train.optim import OPTIMIZERS, make_optimizer, register_optimizer
from cnn_jax.train.parallel import data_mesh
from cnn_jax.train.program import Program, build, init_states
from cnn_jax.train.programs import (
    epoch_batches,
    make_evaluate,
    make_train_chunk,
    make_train_epoch,
)
from cnn_jax.train.seeds import over_seeds
from cnn_jax.train.state import Progress, TrainState, create_state
from cnn_jax.train.step import cross_entropy, make_eval_step, make_train_step

__all__ = [
    "CompileLog", "OPTIMIZERS", "FitResult", "Program", "Progress", "TrainState", "build",
    "count_compiles", "create_state", "data_mesh", "enable_compile_cache", "cross_entropy",
    "epoch_batches", "fit", "init_states", "make_eval_step", "make_evaluate", "make_optimizer",
    "make_train_chunk", "make_train_epoch",
    "make_train_step", "over_seeds", "register_optimizer", "run_epochs",
]  # fmt: skip
