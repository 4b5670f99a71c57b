"""The staging file of a bulk import (暂存): prepared events between the import's two passes.

Between validation and writing, the prepared events of an import wait in a throw-away SQLite
database, so memory stays flat for any file size; the bulk writer (`bulk`) appends them from
there. Each import's file is locked while it runs, and an import removes the files of imports
that died before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

NEW, STORED, SKIPPED = 0, 1, 2  # staged entry states: to write, already in the log, refused


class Staging:
    """Prepared events between the two passes of an import: `(seq, id, row, body, state)`.

    The file is locked while the import runs. A killed import cannot delete its file, so
    each new one first removes the staging files nobody holds a lock on any more.
    """

    PREFIX = "dangliang-staging-"

    def __init__(self, directory: Path | None = None):
        remove_abandoned_staging(directory)
        fd, name = tempfile.mkstemp(prefix=self.PREFIX, suffix=".db", dir=directory)
        self._lock_fd = fd
        _try_lock(fd)
        self.path = Path(name)
        self.conn = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-65536"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(
            "CREATE TABLE entries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, "
            "row INTEGER NOT NULL, body TEXT NOT NULL, state INTEGER NOT NULL)"
        )
        self.count = 0

    def add(self, entries: Sequence[tuple[str, int, str, int]]) -> None:
        """Append `(id, row, body, state)` entries (an append to a rowid table: ~1 µs each)."""
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO entries (id, row, body, state) VALUES (?,?,?,?)", entries
        )
        self.conn.execute("COMMIT")
        self.count += len(entries)

    def rows_with_hash_prefixes(self, prefixes: Sequence[str]) -> list[tuple[str, int, str]]:
        """`(id, row, body)` of every entry whose id starts with one of these 16-hex-digit
        prefixes, in file order (a full scan: only used when a file repeats a key)."""
        return self.conn.execute(
            "SELECT id, row, body FROM entries "
            "WHERE substr(id, 1, 16) IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (json.dumps(list(prefixes)),),
        ).fetchall()

    def mark_skipped(self, rows: Sequence[int]) -> None:
        self.conn.execute(
            f"UPDATE entries SET state = {SKIPPED} WHERE row IN (SELECT value FROM json_each(?))",
            (json.dumps(list(rows)),),
        )

    def counts(self) -> dict[int, int]:
        return dict(self.conn.execute("SELECT state, count(*) FROM entries GROUP BY state"))

    def batches(self, size: int) -> Iterator[tuple[int, int]]:
        """Consecutive `(first_seq, last_seq)` ranges of `size` staged entries."""
        for first in range(1, self.count + 1, size):
            yield first, min(first + size - 1, self.count)

    def close(self) -> None:
        self.conn.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._lock_fd)


def remove_abandoned_staging(directory: Path | None = None, min_age_seconds: float = 60) -> None:
    """Delete staging files of imports that died (unlocked, and older than a minute so a
    file another import has only just created is never taken for abandoned)."""
    folder = Path(directory or tempfile.gettempdir())
    now = time.time()
    for path in folder.glob(f"{Staging.PREFIX}*.db"):
        try:
            if now - path.stat().st_mtime < min_age_seconds:
                continue
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            if _try_lock(fd):
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    """Take an exclusive advisory lock without waiting; False if another process has it.
    (Where there is no fcntl, e.g. Windows, nothing is locked and nothing is cleaned.)"""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
