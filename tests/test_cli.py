"""The real entry point: every config composes, a tiny run writes its records, bad input fails."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_jax.config import ConfigError
from experiments.compose import compose_config
from experiments.overrides import bad_group_choice, group_options

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ["model", "pooling", "activation", "optimizer", "data", "experiment", "logger"]


def all_choices():
    return [(g, o) for g in GROUPS for o in group_options(g)]


@pytest.mark.parametrize("group,option", all_choices())
def test_every_config_file_composes_and_validates(group, option):
    compose_config(f"{group}={option}")


def test_bad_group_choice_message():
    assert bad_group_choice(["pooling=foo"]) == (
        "pooling='foo' is not one of avg, l2, lp, max, max_overlap, none, strided")
    assert bad_group_choice(["pooling=max,l2", "seed=1"]) is None
    assert bad_group_choice(["logger=[tensorboard,csv]", "logger=[]"]) is None
    assert bad_group_choice(["logger=[csv,neptune]"]) == (
        "logger='neptune' is not one of csv, mlflow, none, tensorboard, wandb")
    # read as Hydra reads them: sweeps, choice(), lists, packages; globs, ranges, deletes skipped
    assert bad_group_choice(["pooling=choice(max,foo)"]) == bad_group_choice(["pooling=foo"])
    assert bad_group_choice(["pooling=max, foo"]) == bad_group_choice(["pooling=foo"])
    assert bad_group_choice(["pooling@conv=foo"]) == bad_group_choice(["pooling=foo"])
    assert bad_group_choice(["+logger=neptune"]) == bad_group_choice(["logger=[neptune]"])
    assert bad_group_choice(["pooling=5"]) == bad_group_choice(["pooling='5'"]) == (
        "pooling='5' is not one of avg, l2, lp, max, max_overlap, none, strided")
    assert bad_group_choice(["pooling=glob(*)", "~pooling", "pooling=null", "seed=range(3)",
                             "data.name='a,b'", "pooling=(("]) is None



def test_a_group_option_on_hydras_search_path_is_an_option(tmp_path):
    (tmp_path / "pooling").mkdir()
    (tmp_path / "pooling" / "mine.yaml").write_text("kind: max\n")
    search = f"hydra.searchpath=[file://{tmp_path}]"
    assert bad_group_choice(["pooling=mine"]) is not None
    assert bad_group_choice(["pooling=mine", search]) is None
    assert bad_group_choice(["pooling=yours", search]) == (
        "pooling='yours' is not one of avg, l2, lp, max, max_overlap, mine, none, strided")

def train(tmp_path, *overrides):
    cmd = [sys.executable, "-m", "experiments.train", f"hydra.run.dir={tmp_path}",
           "data.train_limit=500", "train.batch_size=50", "train.epochs=1", *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_tiny_run_writes_records(tmp_path, mnist_dir):
    proc = train(tmp_path, "model=nielsen_conv1", "optimizer=sgd", "activation=sigmoid",
                 "train.epochs=2", f"data.dir={mnist_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["model"] == "nielsen_conv1"
    assert metrics["epochs"] == 2 and metrics["best_val_epoch"] in (1, 2)
    assert 0.1 < metrics["test_acc"] <= 1.0
    assert metrics["params"] == 520 + 2880 * 100 + 100 + 1010
    for key in ("seconds", "compile_seconds", "images_per_sec", "last_test_acc", "val_acc"):
        assert metrics[key] is not None
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert json.loads((tmp_path / "config.json").read_text())["model"]["name"] == "nielsen_conv1"
    assert (tmp_path / ".hydra" / "config.yaml").exists()
    assert metrics["resumed_from"] is None
    origin = metrics["provenance"]
    assert origin["git_commit"] and isinstance(origin["git_dirty"], bool)
    assert "-m experiments.train" in origin["command"] and "train.epochs=2" in origin["command"]
    assert origin["versions"]["jax"] and origin["device_kind"] and origin["hostname"]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))  # the default logger
    # the header says what is trained; the libtpu probe is silent; train.log keeps epoch lines
    assert "model nielsen_conv1: conv 20@5x5 max-pool, FC100, sigmoid; " in proc.stdout
    assert "libtpu" not in proc.stdout + proc.stderr
    log = (tmp_path / "train.log").read_text()
    assert "epoch 1/2: loss " in log and "epoch 2/2: loss " in log
    # where the time went, from the process's start: the phases add up to the wall time
    phases = metrics["phases"]
    assert list(phases) == sorted([
        "startup.interpreter", "startup.imports", "startup.config", "startup.setup", "setup",
        "data", "trace", "compile", "train", "evaluate"])
    assert all(seconds >= 0 for seconds in phases.values())
    (wall,) = re.findall(r"wall_s=([0-9.]+)", proc.stdout)
    assert 0.8 * float(wall) <= sum(phases.values()) <= float(wall) + 0.05


@pytest.mark.parametrize("override,needle", [
    ("train.batch_size=1000", "train.batch_size=1000 exceeds the 500 training images"),
    ("train.devices=4", "train.devices=4 is not in 1..1"),
])
def test_errors_inside_the_run_exit_2_with_one_line(tmp_path, mnist_dir, override, needle):
    proc = train(tmp_path, "model=nielsen_conv1", "train.batch_size=52", override,
                 f"data.dir={mnist_dir}", "logger=none")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {needle}")
    assert "Error" not in proc.stderr  # no Python class name, no traceback
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    "override,needle",
    [
        ("model.conv.0.stride=0", "model.conv.0.stride=0 must be an integer >= 1"),
        ("pooling.window=25", "model.conv.0.pool.window=25 is larger than"),
        ("model.dense.0.dropout=1.0", "model.dense.0.dropout=1.0 must be a number in [0, 1)"),
    ],
)
def test_bad_overrides_as_the_cli_spells_them_name_the_value(override, needle):
    # composed as the CLI composes them; the CLI's one-line exit: the test below
    with pytest.raises(ConfigError) as err:
        compose_config("model=nielsen_conv1", override)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "override,needle",
    [
        ("pooling=foo", "pooling='foo' is not one of"),  # caught before Hydra composes
        ("optimizer.lr=-0.5", "optimizer.lr=-0.5 must be a number > 0"),  # by the validation
    ],
)
def test_bad_overrides_exit_nonzero_with_one_line(tmp_path, override, needle):
    proc = train(tmp_path, "model=nielsen_conv1", override)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert needle in last, proc.stderr[-1000:]
    metrics = tmp_path / "metrics.json"
    assert not metrics.exists() or json.loads(metrics.read_text())["status"] == "failed"
