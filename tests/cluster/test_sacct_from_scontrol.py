"""The test cluster's `sacct` (answered from `scontrol -o show job`): the rows submitit reads,
and a clear refusal of any other form (no cluster needed)."""

from __future__ import annotations

import pytest
from sacct_from_scontrol import job_ids, rows
from slurm_cluster import job_records

ARRAY_TASK = ("JobId=8 ArrayJobId=7 ArrayTaskId=1 JobName=train UserId=root(0) "
              "JobState=RUNNING Reason=None Restarts=0 StartTime=2025-01-01T10:00:00 NodeList=vm")
PLAIN = "JobId=9 JobName=wrap JobState=COMPLETED Reason=None NodeList=vm"


def test_rows_name_an_array_task_as_arrayid_task_and_a_plain_job_by_its_id():
    records = job_records(f"{ARRAY_TASK}\n{PLAIN}\n")
    assert rows(records) == ["7_1|RUNNING|vm", "9|COMPLETED|vm"]
    assert records[0]["Restarts"] == "0" and records[0]["StartTime"] == "2025-01-01T10:00:00"


def test_job_ids_of_submitits_command():
    argv = ["-o", "JobID,State,NodeList", "--parsable2", "-j", "7", "-j", "9"]
    assert job_ids(argv) == ["7", "9"]


@pytest.mark.parametrize("argv", [
    [], ["-o", "JobID,State", "--parsable2", "-j", "7"],
    ["-o", "JobID,State,NodeList", "--parsable2", "-u", "root"],
    ["-o", "JobID,State,NodeList", "--parsable2", "-j"]])
def test_other_arguments_are_refused_naming_them(argv):
    with pytest.raises(SystemExit, match="unsupported arguments"):
        job_ids(argv)
