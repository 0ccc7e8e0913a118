"""A search's study shared through a real PostgreSQL server, as on a cluster: the test starts its
own server (Debian's postgresql: initdb + pg_ctl in a temp dir, 127.0.0.1 on a free port) and
stops it at the end. Marked `cluster`: `make test-cluster` installs postgresql and runs these."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from search_runs import check_shared_study, search_args, start, wait_ok

pytestmark = pytest.mark.cluster
USER, DB = "cnn", "optuna"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin dir holding initdb and pg_ctl (None: none)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_server_user(argv: list[str]) -> list[str]:
    """The command run as `postgres` when we are root (the server refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.getuid() == 0 else argv


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL server with database `optuna`, trusting local connections; its URL."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb): `make test-cluster` installs "
                    "Debian's postgresql, or apt-get install postgresql")
    if os.getuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no `postgres` user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="cnn_jax_pg_"))
    data, port = root / "data", free_port()
    if os.getuid() == 0:
        os.chown(root, server_user.pw_uid, server_user.pw_gid)
    run = lambda *argv: subprocess.run(as_server_user([str(a) for a in argv]), check=True,
                                       capture_output=True, text=True, timeout=120)
    run(bin_dir / "initdb", "-D", data, "-A", "trust", "-U", USER)
    run(bin_dir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-o",
        f"-p {port} -h 127.0.0.1 -k {root}", "start")
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB}")
        yield f"postgresql://{USER}@127.0.0.1:{port}/{DB}"
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_postgresql_study_and_run_exactly_its_trials(tmp_path,
                                                                           mnist_dir):
    with postgres_server() as storage:
        sweep = tmp_path / "search"
        args = search_args(sweep, mnist_dir, "hydra.sweeper.n_trials=5",
                           "hydra.sweeper.pruner=null", f"hydra.sweeper.storage={storage}",
                           "hydra.sweeper.study_name=shared")
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        wait_ok([start(args, log) for log in logs], logs)
        check_shared_study(sweep, storage, "shared", 5)
