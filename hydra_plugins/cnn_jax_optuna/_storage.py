"""The `storage` setting -> an Optuna storage, and the lock that makes a study's trial budget
exact: the workers of one search take it in turn to count the study's trials and ask for new ones.

null: in memory. `sqlite:///FILE`, `postgresql://...` (any SQLAlchemy URL): Optuna's RDBStorage,
with heartbeats. `journal:FILE`: Optuna's JournalStorage on a JournalFileBackend (a file on a
shared file system, no database server).
"""

from __future__ import annotations

import contextlib
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnn_jax.config import ConfigError

JOURNAL = "journal:"
SQLITE = "sqlite:///"
SQLITE_TIMEOUT_S = 120  # a worker waits this long for another's write to the sqlite file


def check_storage(spec: Any) -> str | None:
    """`spec` if it names a storage, else a one-line ConfigError."""
    if spec is None or (isinstance(spec, str) and (spec.startswith(JOURNAL) or "://" in spec)):
        return spec
    raise ConfigError(f"hydra.sweeper.storage={spec!r} is not one of null (in memory), an RDB "
                      "URL (sqlite:///FILE, postgresql://USER@HOST:PORT/DB) or journal:FILE")


def make_storage(spec: str | None, heartbeat_interval: int | None = None) -> Any:
    """The Optuna storage `spec` names (None: in memory)."""
    import optuna

    if check_storage(spec) is None:
        return None
    if spec.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        path = Path(spec[len(JOURNAL):]).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if spec.startswith(SQLITE) else {}
    with warnings.catch_warnings():  # heartbeats: "experimental" since Optuna 2.9
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(spec, engine_kwargs=engine,
                                          heartbeat_interval=heartbeat_interval)


def shown(spec: str | None) -> str | None:
    """The storage setting as a record may show it: an RDB URL's password hidden."""
    if spec is None or spec.startswith(JOURNAL):
        return spec
    from sqlalchemy.engine import make_url

    return make_url(spec).render_as_string(hide_password=True)


@contextlib.contextmanager
def budget_lock(spec: str | None, study_name: str) -> Iterator[None]:
    """Held by one worker of the study at a time (in memory: a no-op): a lock file beside a
    sqlite or journal file, a PostgreSQL advisory lock on the server. Other RDBs: no lock."""
    if spec is None or spec == SQLITE + ":memory:":
        yield
    elif spec.startswith((JOURNAL, SQLITE)):
        from filelock import FileLock

        path = Path(spec[len(JOURNAL if spec.startswith(JOURNAL) else SQLITE):]).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.{study_name}.budget.lock"):
            yield
    elif spec.startswith("postgresql"):
        yield from _advisory_lock(spec, zlib.crc32(study_name.encode()))
    else:
        yield


def _advisory_lock(url: str, key: int) -> Iterator[None]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()
