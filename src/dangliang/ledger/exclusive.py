"""One at a time across processes, per county: a lock held around a check and the append
that relies on it (独占锁).

Some invariants span several aggregates, so the log's optimistic concurrency (one aggregate's
version) cannot keep them: "one open draft run per ledger" is read from every period's runs,
and two processes each recording a draft for another month both find none open. Holding this
lock from the check to the append makes the second wait, then see the first's draft.

PostgreSQL: a session-level advisory lock on a key made of the name and the county's schema
(through a Citus coordinator too), released when the block ends or the connection dies.
SQLite: `flock` on a file beside the database, released when the block ends or the process
dies (flock locks belong to the open file, so two threads of one process exclude each other
as well).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from sqlalchemy import Engine, text

from dangliang.settings import Database


@contextlib.contextmanager
def exclusive(database: Database, engine: Engine, name: str) -> Iterator[None]:
    """Hold the county's lock `name` for the block (waiting for it if another holds it)."""
    if database.backend == "sqlite":
        with _file_lock(database, name):
            yield
        return
    key = "hashtextextended(:name || ':' || current_schema(), 0)"
    with engine.connect() as conn:
        conn.execute(text(f"SELECT pg_advisory_lock({key})"), {"name": name})
        conn.commit()  # the lock is the session's: no transaction stays open while held
        try:
            yield
        finally:
            conn.execute(text(f"SELECT pg_advisory_unlock({key})"), {"name": name})
            conn.commit()


@contextlib.contextmanager
def _file_lock(database: Database, name: str) -> Iterator[None]:
    if database.sqlite_path is None:  # pragma: no cover - an in-memory log has one process
        yield
        return
    path = database.sqlite_path.with_name(f"{database.sqlite_path.name}.{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
