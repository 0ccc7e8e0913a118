"""experiments.inspect_run writes five real figures of a run; experiments.summary prints tables."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from cnn_jax.config import from_mapping, to_dict
from cnn_jax.results.figures import (
    confusion_matrix,
    montage,
    worst_mistakes,
)
from experiments import inspect_run as inspect_cli
from experiments import summary
from experiments.compose import compose_config

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("filters", "feature_maps", "curves", "confusion", "mistakes")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def train(run_dir: Path, mnist_dir: Path, *overrides: str) -> None:
    cmd = [sys.executable, "-m", "experiments.train", f"hydra.run.dir={run_dir}",
           f"data.dir={mnist_dir}", "data.train_limit=600", "train.batch_size=50",
           "train.epochs=2", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory, mnist_dir) -> Path:
    """A tiny two-seed nielsen_conv1 run (Adam, ReLU), trained once for the module."""
    run_dir = tmp_path_factory.mktemp("conv_run")
    train(run_dir, mnist_dir, "model=nielsen_conv1", "train.seeds=2")
    return run_dir


@pytest.fixture(scope="module")
def conv_figures(conv_run, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("figures")
    cmd = [sys.executable, "-m", "experiments.inspect_run", str(conv_run), "--out", str(out),
           "--digit", "3", "--seed-index", "1"]
    return out, subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_inspect_writes_five_nontrivial_pngs(conv_figures):
    out, proc = conv_figures
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test accuracy (seed 1" in proc.stdout
    for name in FIGURES:
        path = out / f"{name}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        assert path.stat().st_mode & 0o777 == 0o644, name
        image = imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) > 200, (name, image.shape)
        assert image.shape[1] < 2000 and image.shape[0] < 2500, (name, image.shape)
        grey = image[..., :3].mean(-1)
        assert grey.std() > 0.05, name  # not blank
        assert (grey < 0.5).mean() > 0.01, name  # has dark content, not just a frame
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in FIGURES)


def test_inspect_defaults_into_run_dir_figures(conv_run, capsys):
    assert inspect_cli.main([str(conv_run)]) == 0
    assert {p.stem for p in (conv_run / "figures").glob("*.png")} == set(FIGURES)
    assert "test accuracy (seed 0" in capsys.readouterr().out


@pytest.mark.parametrize("extra,needle", [(["--seed-index", "2"], "--seed-index=2"),
                                          (["--digit", "10000"], "--digit=10000")])
def test_inspect_bad_index_is_one_line_exit_2(conv_run, tmp_path, capsys, extra, needle):
    assert inspect_cli.main([str(conv_run), "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and str(conv_run) in err


def test_inspect_missing_dir_or_checkpoint_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert inspect_cli.main([str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and str(missing) in err and len(err.splitlines()) == 1
    (tmp_path / "config.json").write_text("{}")
    assert inspect_cli.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(tmp_path / "checkpoints") in err and len(err.splitlines()) == 1
    assert not (tmp_path / "checkpoints").exists()


def test_inspect_fc_only_net_skips_conv_figures(tmp_path, mnist_dir, capsys):
    from cnn_jax.experiment import run

    run(compose_config("model=nielsen_fc", f"data.dir={mnist_dir}", "data.train_limit=300",
                    "train.epochs=1", "train.batch_size=50", "train.progress=false"), tmp_path)
    assert inspect_cli.main([str(tmp_path), "--out", str(tmp_path / "f")]) == 0
    assert "no conv layers" in capsys.readouterr().out
    assert {p.stem for p in (tmp_path / "f").glob("*.png")} == {"curves", "confusion", "mistakes"}


@pytest.mark.parametrize("overrides", [["model=nielsen_conv1"], ["model=nielsen_conv2",
                                       "pooling=lp", "model.dense.0.dropout=0.5"], ["model=fast"]])
def test_config_json_round_trips(overrides):
    cfg = compose_config(*overrides)
    assert from_mapping(json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_figure_helpers():
    assert confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3).tolist() == [
        [1, 0, 0], [0, 1, 1], [0, 0, 1]]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert worst_mistakes(probs, np.array([1, 1, 1, 0])).tolist() == [0, 3, 2]
    tiled = montage(np.ones((2, 3, 5)), cols=2)
    assert tiled.shape == (3 * 3 - 1, 2 * 4 - 1) and np.isnan(tiled).sum() == tiled.size - 30


def test_summary_cli_prints_layer_table():
    cmd = [sys.executable, "-m", "experiments.summary", "model=nielsen_conv1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    conv0 = next(line for line in proc.stdout.splitlines() if line.startswith("conv0"))
    assert conv0.split()[1:3] == ["12x12x20", "520"]


def test_summary_fc_and_bad_overrides(capsys):
    assert summary.main(["model=nielsen_fc", "model.dense.0.units=30"]) == 0
    dense0 = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("dense0"))
    assert dense0.split()[1:3] == ["30", "23,550"]
    for bad, needle in [(["model=foo"], "model='foo' is not one of"),
                        (["model.conv.0.stride=0"], "model.conv.0.stride=0 must be"),
                        (["nonsense.key=1"], "nonsense.key")]:
        assert summary.main(bad) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and needle in err and len(err.splitlines()) == 1
