"""A one-node SLURM cluster on this machine for the `cluster` tests: munged, slurmctld and slurmd
as child processes, every file (key, sockets, config, state, spool, logs) in one directory.

`start(root)` returns a running `Cluster` whose `env` (SLURM_CONF, and a PATH whose `sacct`
answers from the controller: there is no accounting daemon) is what SLURM commands and
submitit need; `Cluster.stop()` ends the daemons it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sinfo", "squeue", "scontrol")
CPUS = 2
PARTITION = "debug"
SACCT_SHIM = Path(__file__).with_name("sacct_from_scontrol.py")


class ClusterError(RuntimeError):
    """The cluster did not come up; the message names the daemon and the end of its log."""


def missing_binaries() -> list[str]:
    """The SLURM and munge programs not found on PATH (or in /usr/sbin)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [name for name in DAEMONS if shutil.which(name, path=path) is None]


def job_records(scontrol_oneliners: str) -> list[dict[str, str]]:
    """`scontrol -o show job` output -> one {key: value} per job; an array task's "JobID" is
    ARRAYID_TASK (as sacct and submitit name it), a plain job's its JobId."""
    records = []
    for line in scontrol_oneliners.splitlines():
        kv = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "JobId" in kv:
            task = kv.get("ArrayTaskId")
            kv["JobID"] = f"{kv['ArrayJobId']}_{task}" if task else kv["JobId"]
            records.append(kv)
    return records


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path, host: str, ctld_port: int, slurmd_port: int) -> str:
    """slurm.conf of a one-node cluster, `CPUS` CPUs, one partition, no accounting, no cgroups."""
    return "\n".join([
        "ClusterName=cnnjax",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # cred_expire: also how long a requeued job waits before it may start again (120 s)
        f"AuthInfo=socket={root / 'munge.socket'},cred_expire=5",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SwitchType=switch/none",
        "MpiDefault=none",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",   # one CPU per job: two jobs at once on 2 CPUs
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "ReturnToService=2",
        "SchedulerParameters=sched_interval=1",
        "MinJobAge=3600",                 # finished jobs stay visible to scontrol (and sacct shim)
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={CPUS} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check,
                              timeout=60)

    def jobs(self, job_id: str) -> list[dict[str, str]]:
        """The controller's records of job `job_id` (an array: one per task)."""
        return job_records(self.run("scontrol", "-o", "show", "job", job_id).stdout)

    def log_tail(self, name: str, lines: int = 15) -> str:
        log = self.root / f"{name}.log"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else "(no log)"

    def stop(self) -> None:
        """SIGTERM the daemons (slurmd first), SIGKILL any still alive after 10 s."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def wait_idle(self, timeout: float = 60) -> None:
        """Until sinfo shows the node idle; a daemon that died, or the timeout, is an error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterError(f"{name} exited ({proc.returncode}):\n{self.log_tail(name)}")
            state = self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise ClusterError(f"node not idle after {timeout:.0f} s (sinfo: {state!r}):\n"
                           f"{self.log_tail('slurmctld')}\n{self.log_tail('slurmd')}")


def _daemon(cluster: Cluster, name: str, *cmd: str) -> None:
    log = open(cluster.root / f"{name}.out", "wb")  # noqa: SIM115 (kept open while it runs)
    cluster.procs[name] = subprocess.Popen(cmd, env=cluster.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(path: Path, proc: subprocess.Popen, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ClusterError(f"{what}: {path} did not appear")
        time.sleep(0.1)


def start(root: Path) -> Cluster:
    """munged, slurmctld and slurmd with everything under `root`; back once the node is idle."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)  # munged refuses key and socket dirs others can write to
    for sub in ("state", "spool", "bin"):
        (root / sub).mkdir(exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, host, free_port(), free_port()))
    sacct = root / "bin" / "sacct"
    sacct.write_text(f"#!/bin/sh\nexec {sys.executable} {SACCT_SHIM} \"$@\"\n")
    sacct.chmod(0o755)
    path = os.pathsep.join([str(root / "bin"), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    cluster = Cluster(root, {**os.environ, "SLURM_CONF": str(conf), "PATH": path})
    key = root / "munge.key"
    cluster.run("mungekey", "--create", f"--keyfile={key}")
    try:
        _daemon(cluster, "munged", "munged", "--foreground", "--force",
                f"--socket={root / 'munge.socket'}", f"--key-file={key}",
                f"--pid-file={root / 'munged.pid'}", f"--seed-file={root / 'munged.seed'}",
                f"--log-file={root / 'munged.log'}")
        _wait_for(root / "munge.socket", cluster.procs["munged"], "munged")
        _daemon(cluster, "slurmctld", "slurmctld", "-D", "-i", "-f", str(conf))
        _daemon(cluster, "slurmd", "slurmd", "-D", "-N", host, "-f", str(conf))
        cluster.wait_idle()
    except BaseException:
        cluster.stop()
        raise
    return cluster
