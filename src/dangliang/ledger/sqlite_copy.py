"""Copies of the SQLite database file, for `dangliang backup` and `dangliang restore`.

A backup is taken with SQLite's online backup API (`sqlite3.Connection.backup`) while the
workbench and imports keep writing: the copying connection holds one read transaction for the
whole copy, so the copy is the database exactly as it stood when that transaction began
(in WAL mode writers are never blocked, and the copy is never restarted by their commits).
The copy is switched out of WAL mode, so a backup is one self-contained file that `sqlite3`
opens as it is.

A restore never writes where the live database is until the restored copy has been checked:
it is copied to a temporary file beside the target, checked there, and then renamed over the
target in one atomic step (`swap_in`), the old file kept under another name by a hard link.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dangliang.domain.errors import DomainError

Progress = Callable[[int, int], Any]  # (done, total)

SIDECARS = ("-wal", "-shm", "-journal")
PAGES_PER_STEP = 4096  # 16 MB of 4 KB pages between progress reports


class DatabaseInUse(DomainError):
    """Another process has the SQLite database open."""


def copy_online(source: Path, target: Path, progress: Progress | None = None) -> None:
    """Copy the live database `source` to the new file `target`, consistently, while others
    may be writing to it."""
    src = sqlite3.connect(source, isolation_level=None, timeout=120)
    try:
        # One read transaction for the whole copy: every step reads the same snapshot.
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            report = (lambda _s, left, total: progress(total - left, total)) if progress else None
            src.backup(dst, pages=PAGES_PER_STEP, progress=report)
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        finally:
            dst.close()
        src.execute("COMMIT")
    finally:
        src.close()


def copy_file(
    source: Path, target: Path, progress: Progress | None = None, chunk: int = 1 << 22
) -> str:
    """Copy a closed database file byte for byte (fsync'd); return its SHA-256 (hex)."""
    digest = hashlib.sha256()
    total = source.stat().st_size
    done = 0
    with source.open("rb") as src, target.open("xb") as dst:
        while block := src.read(chunk):
            digest.update(block)
            dst.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def events_in(path: Path, events_table: str) -> int:
    """How many events the database at `path` holds (0 when it has no events table)."""
    conn = sqlite3.connect(path, timeout=120)
    try:
        found = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
            (events_table,),
        ).fetchone()[0]
        if not found:
            return 0
        return int(conn.execute(f'SELECT count(*) FROM "{events_table}"').fetchone()[0])
    finally:
        conn.close()


def settle(path: Path) -> None:
    """Write back everything in the database's WAL and make sure nobody else has it open:
    after the last connection closes SQLite removes the -wal file, so one still there means
    another process (the workbench, an import) is using the database."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=120)
    try:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    if (busy is not None and busy[0]) or wal.exists():
        raise DatabaseInUse(
            f"数据库 {path} 正被其他进程使用：请先停止工作台（dangliang serve）和导入，再恢复",
            f"the database {path} is in use by another process: stop the workbench "
            "(dangliang serve) and any import before restoring",
        )


def swap_in(restored: Path, target: Path, keep: Path | None) -> None:
    """Put the checked copy `restored` where `target` is, in one atomic rename. With `keep`,
    the old file stays reachable under that name (a hard link made first, so at every moment
    `target` is either the old database or the new one). Call `settle(target)` first."""
    if keep is not None:
        try:
            os.link(target, keep)
        except OSError:  # a file system without hard links: the old file is moved instead
            os.replace(target, keep)
    for suffix in SIDECARS:  # the old file's (empty) WAL must not be read as the new one's
        with contextlib.suppress(FileNotFoundError):
            target.with_name(target.name + suffix).unlink()
    os.replace(restored, target)
    _sync_directory(target.parent)


def remove(path: Path) -> None:
    """Remove a database file and whatever SQLite keeps beside it."""
    for name in (path.name, *(path.name + s for s in SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(name).unlink()


def _sync_directory(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = [
    "DatabaseInUse",
    "copy_file",
    "copy_online",
    "events_in",
    "remove",
    "settle",
    "swap_in",
]
