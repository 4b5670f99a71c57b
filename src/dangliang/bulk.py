"""Batched append of stored events, for imports of millions of service records.

The library's save path builds an aggregate, maps its event and inserts row by row (about
27,000 records/s on SQLite here). An import does not need the aggregate: a `Recorded` event is
a pure function of the row, so the importer prepares the stored event's JSON itself (with the
library's own transcoder, so the bytes are the ones the mapper would write — tested) and this
module inserts whole batches into the library's own table, one transaction per batch:

- a repeated record is refused by the table's own primary key (`ON CONFLICT DO NOTHING`), so
  re-imports and concurrent overlapping imports neither lose nor duplicate anything;
- on PostgreSQL the batch takes the same `EXCLUSIVE` table lock as the library's recorder,
  so notification ids are issued in commit order and catch-up readers never skip a gap.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Protocol
from uuid import UUID

from dangliang.settings import Database

StoredRow = tuple[str, int, str, bytes]  # (originator id hex, version, topic, state)


class BulkWriter(Protocol):
    def insert(self, rows: Sequence[StoredRow]) -> int:
        """Insert one batch in one transaction; return how many rows were new."""

    def first_events(self, originator_ids: Sequence[str]) -> dict[str, bytes]:
        """State of version 1 for those of the given ids (hex) that are already stored."""

    def close(self) -> None: ...


class SQLiteBulkWriter:
    def __init__(self, database: Database, table: str):
        self._conn = sqlite3.connect(
            str(database.sqlite_path), isolation_level=None, timeout=120, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed batch survives a killed process; only a power cut may
        # lose the last batches, which a re-run of the import then writes again.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # Service-record ids are uuid5 hashes, so each insert and lookup lands on a random page
        # of the primary-key index; a cache that holds the index's hot pages makes the
        # difference between seek-bound and CPU-bound (see BENCHMARKS.md).
        self._conn.execute("PRAGMA cache_size=-262144")  # KiB: 256 MiB upper bound
        # Checkpoint once at the end instead of after every batch: each index page is then
        # copied back from the WAL once, not once per batch that touched it.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._table = table
        self._insert = (
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "VALUES (?,?,?,?) ON CONFLICT DO NOTHING"
        )

    def insert(self, rows: Sequence[StoredRow]) -> int:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            before = self._conn.total_changes
            cur.executemany(self._insert, rows)
            inserted = self._conn.total_changes - before
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return inserted

    def first_events(self, originator_ids: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for chunk in _chunks(originator_ids, 900):
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT originator_id, state FROM {self._table} "
                f"WHERE originator_version = 1 AND originator_id IN ({marks})",
                chunk,
            ).fetchall()
            out.update(rows)
        return out

    def close(self) -> None:
        # If a reader holds the WAL, SQLite checkpoints it later on its own.
        with contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()


class PostgresBulkWriter:
    def __init__(self, database: Database, table: str):
        import psycopg
        from psycopg import sql

        self._sql = sql
        self._conn = psycopg.connect(
            host=database.host,
            port=database.port,
            user=database.user,
            password=database.password or None,
            dbname=database.dbname,
            autocommit=False,
        )
        schema = database.schema or "public"
        self._table = sql.Identifier(schema, table)
        self._channel = sql.Identifier(table.replace(".", "_"))

    def insert(self, rows: Sequence[StoredRow]) -> int:
        sql = self._sql
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS dl_bulk_events (ord int, "
                "originator_id uuid, originator_version bigint, topic text, state bytea) "
                "ON COMMIT DELETE ROWS"
            )
            with cur.copy(
                "COPY dl_bulk_events (ord, originator_id, originator_version, topic, state) "
                "FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int4", "uuid", "int8", "text", "bytea"])
                for n, (oid, version, topic, state) in enumerate(rows):
                    copy.write_row((n, UUID(oid), version, topic, state))
            # The library's own write lock: notification ids in commit order (see module doc).
            cur.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self._table))
            cur.execute(sql.SQL("NOTIFY {}").format(self._channel))
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (originator_id, originator_version, topic, state) "
                    "SELECT originator_id, originator_version, topic, state "
                    "FROM dl_bulk_events ORDER BY ord ON CONFLICT DO NOTHING"
                ).format(self._table)
            )
            return cur.rowcount

    def first_events(self, originator_ids: Sequence[str]) -> dict[str, bytes]:
        sql = self._sql
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT originator_id, state FROM {} "
                    "WHERE originator_version = 1 AND originator_id = ANY(%s)"
                ).format(self._table),
                ([UUID(h) for h in originator_ids],),
            )
            return {row[0].hex: bytes(row[1]) for row in cur.fetchall()}

    def close(self) -> None:
        self._conn.close()


def bulk_writer(database: Database, table: str) -> BulkWriter:
    if database.backend == "sqlite":
        return SQLiteBulkWriter(database, table)
    return PostgresBulkWriter(database, table)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
