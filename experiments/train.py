"""python -m experiments.train [group=option ...] [key=value ...]: train, write its records."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from cnn_jax.config import ConfigError, from_dictconfig
from cnn_jax.data import DataError
from cnn_jax.experiment import run
from cnn_jax.results import records
from cnn_jax.train.compiles import enable_compile_cache
from experiments.overrides import exit_on_bad_group_choice


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(dcfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir, overrides = Path(hc.runtime.output_dir), list(hc.overrides.task)
    done = records.finished_ok(run_dir, overrides)
    if done:
        print(f"skip (already ok): {run_dir}")
        return done.get("test_acc")
    try:
        cfg = from_dictconfig(dcfg)
        enable_compile_cache(cfg.train.compile_cache)
        metrics = run(cfg, run_dir, overrides)
    except (ConfigError, DataError) as err:
        return _fail(run_dir, overrides, f"{err}", exit_code=2)
    except Exception as err:  # a crashing job is recorded; a sweep goes on without it
        return _fail(run_dir, overrides, f"{type(err).__name__}: {err}", exit_code=1)
    acc = metrics["test_acc"]
    print(f"{metrics['status']}: test_acc={acc if acc is None else round(100 * acc, 2)}% "
          f"epochs={metrics['epochs']} seconds={metrics['seconds']:.1f} run_dir={run_dir}")
    return acc


def _fail(run_dir: Path, overrides: list[str], error: str, exit_code: int) -> None:
    records.write_json_atomic(run_dir / records.METRICS, records.failure_record(error, overrides))
    print(f"error: {error.splitlines()[0] if error else error}", file=sys.stderr)
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        raise SystemExit(exit_code)


if __name__ == "__main__":
    exit_on_bad_group_choice()
    main()
