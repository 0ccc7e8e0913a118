"""Experiment loggers: each backend records config, per-seed epochs and the summary, offline."""

import csv
import json
import struct
import sys

import pytest

from cnn_jax.config import ConfigError
from cnn_jax.flat import flatten
from cnn_jax.loggers import SWEEP_GROUP_ENV, make_writer, missing_extra, sweep_group
from cnn_jax.loggers.base import scalar_params

SEEDS = [3, 4]
CONFIG = {"optimizer": {"lr": 0.1, "name": "sgd"}, "model": {"conv": [{"features": 20}]},
          "train": {"epochs": 2}}
EPOCHS = [
    {"epoch": 1, "train_loss": [0.9, 0.8], "val_acc": [0.5, 0.6], "test_acc": [0.55, 0.65],
     "seconds": 1.5},
    {"epoch": 2, "train_loss": [0.4, float("nan")], "val_acc": [0.7, None],
     "test_acc": [0.75, None], "seconds": 1.25},
]
SUMMARY = {"status": "diverged", "val_acc": 0.7, "test_acc": 0.75, "epochs": 2, "error": None}


def log_run(loggers, run_dir, group=None):
    writer = make_writer(loggers, run_dir, group=group)
    writer.config(CONFIG)
    for record in EPOCHS:
        writer.epoch(record, SEEDS)
    writer.summary(SUMMARY)
    writer.close()


def test_flatten_indexes_lists_of_blocks_and_scalar_params_stringify_the_rest():
    flat = flatten({"model": {"conv": [{"features": 20}], "input_shape": [28, 28, 1]}})
    assert flat == {"model.conv.0.features": 20, "model.input_shape": [28, 28, 1]}
    assert scalar_params({"a": {"b": None, "c": 1.5}}) == {"a.b": "None", "a.c": 1.5}


def test_csv_writes_a_row_per_epoch_and_seed(tmp_path):
    log_run({"csv": {}}, tmp_path)
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert [(r["epoch"], r["seed"]) for r in rows] == [("1", "3"), ("1", "4"), ("2", "3"),
                                                       ("2", "4")]
    assert float(rows[1]["val_acc"]) == 0.6 and float(rows[2]["train_loss"]) == 0.4
    (summary,) = csv.DictReader((tmp_path / "csv" / "summary.csv").open())
    assert summary["status"] == "diverged" and float(summary["test_acc"]) == 0.75
    config = dict(csv.reader((tmp_path / "csv" / "config.csv").open()))
    assert config["optimizer.lr"] == "0.1" and config["model.conv.0.features"] == "20"


def read_events(log_dir):
    """(tag, step, simple_value) of every summary value in the event files of log_dir."""
    from tensorboardX.proto.event_pb2 import Event

    out = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):  # TFRecord: u64 length, u32 crc, payload, u32 crc
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = Event.FromString(data[i + 12 : i + 12 + n])
            out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
            i += 12 + n + 4
    return out


def test_tensorboard_logs_per_seed_scalars_and_hparams(tmp_path):
    log_run({"tensorboard": {}}, tmp_path)
    events = read_events(tmp_path / "tensorboard")
    assert [(s, v) for t, s, v in events if t == "val_acc/seed4"] == [(1, pytest.approx(0.6))]
    assert [s for t, s, _ in events if t == "train_loss/seed3"] == [1, 2]
    assert any(t == "config/text_summary" for t, _, _ in events)
    hparams = read_events(tmp_path / "tensorboard" / "hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= {t for t, _, _ in hparams}
    assert [v for t, _, v in hparams if t == "final/test_acc"] == [pytest.approx(0.75)]


def test_mlflow_logs_into_a_sqlite_store_beside_the_run(tmp_path):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "sweep" / "job0"
    log_run({"mlflow": {"experiment_name": "unit"}}, run_dir)
    store = tmp_path / "sweep" / "mlflow.db"
    assert store.exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("unit").experiment_id])
    assert run.data.params["optimizer.lr"] == "0.1"
    assert run.data.tags["status"] == "diverged" and run.info.status == "FINISHED"
    assert run.data.metrics["final/test_acc"] == 0.75
    history = client.get_metric_history(run.info.run_id, "val_acc/seed3")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.7)]
    assert client.get_metric_history(run.info.run_id, "val_acc/seed4")[-1].step == 1
    artifacts = run_dir.parent / "mlartifacts"
    assert json.loads(next(artifacts.rglob("config.json")).read_text()) == CONFIG


def wandb_records(path):
    """The protobuf records of an offline .wandb file (a LevelDB-style log of 32 KiB blocks)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, i, block, out, buf = path.read_bytes(), 7, 32768, [], b""
    while i + 7 <= len(data):
        left = block - i % block
        _, n, kind = struct.unpack("<IHB", data[i : i + 7]) if left >= 7 else (0, 0, 0)
        if kind == 0:  # block padding
            i += left
            continue
        buf, i = buf + data[i + 7 : i + 7 + n], i + 7 + n
        if kind in (1, 4):  # a full record, or the last piece of one
            out.append(Record.FromString(buf))
            buf = b""
    return out


def test_the_sweep_group_is_the_multiruns_else_the_one_a_job_run_alone_is_given(monkeypatch):
    monkeypatch.delenv(SWEEP_GROUP_ENV, raising=False)
    assert sweep_group(None) is None and sweep_group("runs/sweepA") == "runs/sweepA"
    monkeypatch.setenv(SWEEP_GROUP_ENV, "runs/sweepB")  # reproduce --lanes: one job on its own
    assert sweep_group(None) == "runs/sweepB" and sweep_group("runs/sweepA") == "runs/sweepA"
    monkeypatch.setenv(SWEEP_GROUP_ENV, "")
    assert sweep_group(None) is None


def test_wandb_offline_run_is_written_under_wandb_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    log_run({"wandb": {"project": "unit", "tags": ["t1"]}}, tmp_path / "run", group="sweepA")
    (records,) = (tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb")
    by_type = {}
    for r in wandb_records(records):
        by_type.setdefault(r.WhichOneof("record_type"), []).append(r)
    (run,) = by_type["run"]
    assert (run.run.project, run.run.run_group, list(run.run.tags)) == ("unit", "sweepA", ["t1"])
    config = {u.key: json.loads(u.value_json) for r in by_type["config"] for u in r.config.update}
    assert config["optimizer"] == {"lr": 0.1, "name": "sgd"}
    history = [{"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
               for r in by_type["history"]]
    assert [(h["epoch"], h["val_acc/seed3"]) for h in history] == [(1, 0.5), (2, 0.7)]
    assert "val_acc/seed4" not in history[1]  # a diverged seed's NaN is not logged
    summary = {u.key: json.loads(u.value_json) for r in by_type["summary"]
               for u in r.summary.update if u.key}
    assert summary["status"] == "diverged" and summary["test_acc"] == 0.75


def test_several_loggers_at_once(tmp_path):
    log_run({"csv": {}, "tensorboard": {"dir": "tb"}}, tmp_path)
    assert (tmp_path / "csv" / "metrics.csv").exists() and list((tmp_path / "tb").glob("events*"))


def test_no_logger_writes_nothing(tmp_path):
    log_run(None, tmp_path / "run")
    log_run({}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name,client,extra", [("mlflow", "mlflow", "mlflow"),
                                               ("wandb", "wandb", "wandb"),
                                               ("tensorboard", "tensorboardX", "cli")])
def test_missing_extra_is_a_one_line_error_naming_it(tmp_path, monkeypatch, name, client, extra):
    for module in [client, *(m for m in sys.modules if m.startswith(f"{client}."))]:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ConfigError) as err:
        make_writer({name: {}}, tmp_path)
    assert str(err.value) == missing_extra(name, extra)
    assert f"--extra {extra}" in str(err.value) and "\n" not in str(err.value)


def test_unknown_logger_or_option_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"logger='neptune' is not one of tensorboard, csv"):
        make_writer({"neptune": {}}, tmp_path)
    with pytest.raises(ConfigError, match=r"logger.csv.colour is not a known key; allowed: dir"):
        make_writer({"csv": {"colour": 1}}, tmp_path)
