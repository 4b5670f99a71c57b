"""Batched append of stored events, for imports of millions of service records.

The library's save path builds an aggregate, maps its event and inserts row by row (about
27,000 records/s on SQLite here). An import does not need the aggregate: a created event is a
pure function of the row, so the importer prepares the stored state itself (service records in
the compact form, `compact`; claims and enrolment byte for byte what the library's mapper
writes — both tested) and this module appends whole batches to the library's own table, one
transaction per batch, each started by its `BatchOpening` (the compact form: the batch's own
`BulkImport.BatchWritten` event first, whose log position begins each record's state):

- a repeated record is refused by the table's own primary key, so re-imports and concurrent
  overlapping imports neither lose nor duplicate anything: SQLite inserts with `ON CONFLICT
  DO NOTHING`; PostgreSQL COPYs a batch straight into the table (validation looked every
  record up), and when another import stored one of them since, the COPY fails inside a
  savepoint and the batch goes again through `INSERT … ON CONFLICT DO NOTHING`;
- on PostgreSQL the batch takes the same `EXCLUSIVE` table lock as the library's recorder,
  so notification ids are issued in commit order and catch-up readers never skip a gap;
- each batch is sealed into the hash chain in its own transaction, so a committed batch is
  never unsealed, even if the import is killed right after it. The batch is hashed on a thread
  while the database inserts it, as it will be stored; the digests are kept only when the
  insert stored exactly that (every record, at the ids after the batch's own event, in that
  order), else the batch is read back and sealed (`batch_seal`).

On PostgreSQL an import that at least doubled the log rebuilds the log's primary key packed
at its end (`PostgresBulkWriter.pack_primary_key`): random uuids appended batch after batch
leave its pages ~64 % full.

Between validation and writing, the prepared events wait in a `staging.Staging` file (a
throw-away SQLite database), so memory stays flat for any file size. On SQLite each batch is
then one `INSERT … SELECT` from the attached staging file: the whole batch runs inside SQLite,
with no Python per row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from dangliang.domain.imports import BulkImport
from dangliang.ledger.batch_seal import is_hex32_run, seal_ahead, seal_batch
from dangliang.ledger.chain import Tables, last_event_id
from dangliang.ledger.eventlog import EventLog
from dangliang.ledger.sealing import qualified
from dangliang.ledger.staging import NEW, Staging
from dangliang.settings import Database

logger = logging.getLogger(__name__)
PACK_LOCK_TIMEOUT = "2s"  # how long packing the primary key waits for its lock (below)


class BatchOpening(Protocol):
    """What starts each batch: its own event, if any, and the start of its records' states."""

    def event(self, rows: int) -> StoredEvent | None:
        """The batch's own event (appended first, in the batch's transaction), or None."""

    def prefix(self, position: int | None) -> bytes:
        """The start of every record's state in the batch, given the log position of the
        batch's own event (None when it has none); the staged body follows it."""


class ImportBatches:
    """The compact form's batches (`compact`): `BulkImport.Started` is saved (`start`) before
    the first batch; each batch's `BatchWritten` event goes first in the batch's transaction,
    and its log position starts each of the batch's records (`[position,…`)."""

    def __init__(self, log: EventLog, *, kind: str, file_name: str, actor: str):
        self._log = log
        self._facts = {"kind": kind, "file_name": file_name, "actor": actor}
        self._import: BulkImport | None = None

    def start(self, import_ref: str) -> None:
        self._import = BulkImport(import_ref=import_ref, **self._facts)
        self._log.save(self._import)

    def event(self, rows: int) -> StoredEvent:
        if self._import is None:
            raise RuntimeError("ImportBatches.start comes before the first batch")
        self._import.batch_written(batch=self._import.batches + 1, rows=rows)
        (written,) = self._import.collect_events()
        return self._log.mapper.to_stored_event(written)

    def prefix(self, position: int | None) -> bytes:
        return b"[%d" % position if position is not None else b"["


class BulkWriter(Protocol):
    def first_events(self, originator_ids: Sequence[str]) -> dict[str, bytes]:
        """State of version 1 for those of the given ids (hex) that are already stored."""

    def append(
        self,
        staging: Staging,
        batch_size: int,
        topic: str,
        opening: BatchOpening,
        progress: Callable[[int, int], None],
    ) -> None:
        """Append the NEW staged entries, one transaction per batch of `batch_size` entries,
        each batch started by `opening`; `progress(size, inserted)` is told after each commit."""

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
        # Service-record ids are uuid5 hashes, so each insert and look-up lands on a random page
        # of the primary-key index; a cache that holds the index makes the difference between
        # seek-bound and CPU-bound (see BENCHMARKS.md).
        self._conn.execute("PRAGMA cache_size=-262144")  # KiB: at most 256 MiB
        # Checkpoint once at the end instead of after every batch: each index page is then
        # copied back from the WAL once, not once per batch that touched it.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._table = table
        self._sealing = Tables(self._conn, "sqlite", table)
        self._attached = False
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dangliang-seal")

    def first_events(self, originator_ids: Sequence[str]) -> dict[str, bytes]:
        rows = self._conn.execute(
            f"SELECT originator_id, state FROM {self._table} WHERE originator_version = 1 "
            "AND originator_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(originator_ids)),),
        ).fetchall()
        return dict(rows)

    def append(
        self,
        staging: Staging,
        batch_size: int,
        topic: str,
        opening: BatchOpening,
        progress: Callable[[int, int], None],
    ) -> None:
        if not self._attached:
            self._conn.execute("ATTACH DATABASE ? AS staging", (str(staging.path),))
            self._attached = True
        # Within a batch, rows go in primary-key order: the index is then walked in order
        # rather than hit at random (measured ~20% faster); log order within a batch is the
        # id order, which carries no meaning.
        insert = (
            f"INSERT INTO {self._table} (originator_id, originator_version, topic, state) "
            "SELECT id, 1, ?, CAST(? || body AS BLOB) FROM ("
            f"  SELECT id, body FROM staging.entries WHERE seq BETWEEN ? AND ? AND state = {NEW}"
            "   ORDER BY id) WHERE true ON CONFLICT DO NOTHING"
        )
        for first, last in staging.batches(batch_size):
            size = self._conn.execute(
                f"SELECT count(*) FROM staging.entries WHERE seq BETWEEN ? AND ? AND state = {NEW}",
                (first, last),
            ).fetchone()[0]
            if not size:
                continue
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                own = opening.event(size)
                batch = self._insert_event(own) if own is not None else None
                start = opening.prefix(batch[2] if batch else None)
                ahead = None
                if batch is not None:  # the staged records, in the insert's order (by id)
                    staged = staging.conn.execute(
                        f"SELECT id, body FROM entries WHERE seq BETWEEN ? AND ? AND state = {NEW} "
                        "ORDER BY id",
                        (first, last),
                    ).fetchall()
                    ahead = seal_ahead(self._hasher, self._sealing, batch, staged, topic, start)
                inserted = self._conn.execute(insert, (topic, start.decode(), first, last)).rowcount
                appended = inserted + (own is not None)
                seal_batch(self._sealing, ahead, inserted, appended, self._stored_ids)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            progress(size, inserted)

    def _stored_ids(self, position: int) -> str:
        # a rowid range is scanned in rowid order (SQLite before 3.44 has no ORDER BY inside
        # an aggregate); an id out of place fails the comparison, it cannot pass it
        found = self._conn.execute(
            f"SELECT group_concat(originator_id, '') FROM (SELECT originator_id FROM "
            f"{self._table} WHERE rowid > ? ORDER BY rowid)",
            (position,),
        ).fetchone()
        return str(found[0] or "")

    def _insert_event(self, event: StoredEvent) -> tuple[StoredEvent, str, int]:
        """Append the batch's own event: `(event, its id as stored, its rowid)`."""
        oid = event.originator_id
        stored_id = oid.hex if isinstance(oid, UUID) else str(oid)
        cursor = self._conn.execute(
            f"INSERT INTO {self._table} (originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?)",
            (stored_id, event.originator_version, event.topic, event.state),
        )
        return event, stored_id, int(cursor.lastrowid or 0)

    def close(self) -> None:
        self._hasher.shutdown()
        if self._attached:
            self._conn.execute("DETACH DATABASE staging")
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
        self._sealing = Tables(
            self._conn, "postgresql", qualified(schema, table), qualified(schema, "audit_chain")
        )
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dangliang-seal")
        self._unique_violation = psycopg.errors.UniqueViolation
        self._internal_error = psycopg.errors.InternalError
        self._lock_not_available = psycopg.errors.LockNotAvailable

    def first_events(self, originator_ids: Sequence[str]) -> dict[str, bytes]:
        sql = self._sql
        # Hex ids go as one array literal cast by the server: a Python list is adapted an
        # element at a time, holding the GIL the checks on the main thread need (measured
        # 4.5 s against 1.4 s per million ids). One index probe per id whatever the table's
        # statistics say: with 10,000 ids the planner may pick a scan of the whole table.
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT e.originator_id, e.state FROM unnest(%s::uuid[]) AS wanted(id) "
                    "CROSS JOIN LATERAL (SELECT originator_id, state FROM {} "
                    "WHERE originator_id = wanted.id AND originator_version = 1) AS e"
                ).format(self._table),
                (_uuid_array(originator_ids),),
            )
            return {row[0].hex: bytes(row[1]) for row in cur.fetchall()}

    def append(
        self,
        staging: Staging,
        batch_size: int,
        topic: str,
        opening: BatchOpening,
        progress: Callable[[int, int], None],
    ) -> None:
        with self._conn.transaction():
            before = last_event_id(self._sealing)
        written = 0
        for rows in _read_ahead(staging, batch_size):
            if rows:
                inserted = self._insert(opening, topic, rows)
                written += inserted
                progress(len(rows), inserted)
        if written and written >= before:
            self.pack_primary_key()

    def pack_primary_key(self) -> bool:
        """Rebuild the log's primary key packed, after an import that at least doubled the
        log (a county's first bulk loads). Its keys are random uuids, so batch after batch
        leaves its pages ~64 % full: 56 bytes a record instead of 41 (BENCHMARKS.md, bytes per
        event). A plain `REINDEX` in one transaction: all or nothing, ~0.5 s per 1,000,000
        records, during which the log waits (neither read nor written). If someone
        else holds the index for longer than `PACK_LOCK_TIMEOUT`, it is left as it is (the
        next import that doubles the log, or an administrator's `REINDEX`, packs it); False
        then."""
        sql = self._sql
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.execute(f"SET LOCAL lock_timeout = '{PACK_LOCK_TIMEOUT}'")
                cur.execute(
                    "SELECT indexrelid::regclass::text FROM pg_index "
                    "WHERE indrelid = %s::regclass AND indisprimary",
                    (self._table.as_string(cur),),
                )
                found = cur.fetchone()
                if found is None:
                    return False
                cur.execute(sql.SQL("REINDEX INDEX {}").format(sql.SQL(found[0])))
        except self._lock_not_available:
            logger.info("the log's primary key was not packed: the index is in use")
            return False
        return True

    def _insert(self, opening: BatchOpening, topic: str, rows: Sequence[tuple[str, str]]) -> int:
        sql = self._sql
        with self._conn.transaction(), self._conn.cursor() as cur:
            # The library's own write lock: notification ids in commit order (module doc).
            cur.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self._table))
            cur.execute(sql.SQL("NOTIFY {}").format(self._channel))
            own = opening.event(len(rows))
            batch = None
            if own is not None:
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} (originator_id, originator_version, topic, state) "
                        "VALUES (%s, %s, %s, %s) RETURNING notification_id"
                    ).format(self._table),
                    (own.originator_id, own.originator_version, own.topic, own.state),
                )
                batch = (own, str(own.originator_id), int(cur.fetchone()[0]))  # type: ignore[index]
            start = opening.prefix(batch[2] if batch else None)
            ahead = seal_ahead(self._hasher, self._sealing, batch, rows, topic, start)
            try:
                # Straight into the table: validation looked every record up, so none is
                # expected to be there. One that another import stored since makes the COPY
                # fail; the batch then goes again, skipping what is there.
                with self._conn.transaction():
                    self._copy(cur, self._table, topic, start, rows)
                inserted = len(rows)
            except (self._unique_violation, self._internal_error) as e:
                if not (_repeated_key(e) or self._any_stored(cur, rows)):
                    raise
                inserted = self._insert_new(cur, topic, start, rows)
            appended = inserted + (own is not None)
            seal_batch(self._sealing, ahead, inserted, appended, self._stored_ids)
            return inserted

    def _copy(
        self, cur: Any, table: Any, topic: str, start: bytes, rows: Sequence[tuple[str, str]]
    ) -> None:
        """COPY records as events of version 1: the text format, a page at a time. The ids
        are hex (uuid input takes them as they are). A state of printable ASCII without a
        backslash — nearly every record — goes as it is (`bytea` reads such text byte for
        byte, and COPY needs no escape for it); any other state goes as hex, which needs no
        escaping either and leaves no room for a client encoding to change a byte."""
        topic_text = _copy_text(topic)
        plain_start = _plain(start.decode("latin-1"))
        head = f"\t1\t{topic_text}\t{start.decode('ascii') if plain_start else ''}"
        hex_head = f"\t1\t{topic_text}\t\\\\x{start.hex()}"
        statement = self._sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(table)
        with cur.copy(statement) as copy:
            for page in range(0, len(rows), 10_000):
                copy.write(
                    "".join(
                        f"{oid}{head}{body}\n"
                        if plain_start and _plain(body)
                        else f"{oid}{hex_head}{body.encode().hex()}\n"
                        for oid, body in rows[page : page + 10_000]
                    ).encode("ascii")
                )

    def _any_stored(self, cur: Any, rows: Sequence[tuple[str, str]]) -> bool:
        """Whether the table already holds any of these records: after a COPY failed with an
        error `_repeated_key` cannot read (Citus relays a shard's refusal as an internal
        error worded in the server's language), what says the error was a repeated key."""
        cur.execute(
            self._sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE originator_id = ANY(%s::uuid[]) "
                "AND originator_version = 1)"
            ).format(self._table),
            (_uuid_array([oid for oid, _ in rows]),),
        )
        found = cur.fetchone()
        return bool(found and found[0])

    def _insert_new(
        self, cur: Any, topic: str, start: bytes, rows: Sequence[tuple[str, str]]
    ) -> int:
        """Insert the records the table does not hold yet, in order; how many were new."""
        sql = self._sql
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS dl_bulk_events (originator_id uuid, "
            "originator_version bigint, topic text, state bytea, "
            "ord bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DELETE ROWS"
        )
        self._copy(cur, sql.Identifier("dl_bulk_events"), topic, b"", rows)
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state) "
                "SELECT originator_id, 1, topic, %s || state FROM dl_bulk_events "
                "ORDER BY ord ON CONFLICT DO NOTHING RETURNING 1"
            ).format(self._table),
            (start,),
        )
        # the rows returned, not the row count: Citus counts the rows offered, not inserted
        return len(cur.fetchall())

    def _stored_ids(self, position: int) -> str:
        with self._conn.cursor() as cur:
            cur.execute(
                self._sql.SQL(
                    "SELECT string_agg(encode(uuid_send(originator_id), 'hex'), '' "
                    "ORDER BY notification_id) "
                    "FROM {} WHERE notification_id > %s"
                ).format(self._table),
                (position,),
            )
            found = cur.fetchone()
            return str(found[0] or "") if found else ""

    def close(self) -> None:
        self._hasher.shutdown()
        self._conn.close()


def _read_ahead(staging: Staging, batch_size: int) -> Iterator[list[tuple[str, str]]]:
    """The staged batches (`_staged`), each read from the staging file (and sorted there,
    without the GIL) on a thread while the one before is sent and the server stores it."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dangliang-staged") as reader:
        ahead = None
        for first, last in staging.batches(batch_size):
            upcoming = reader.submit(_staged, staging, first, last)
            if ahead is not None:
                yield ahead.result()
            ahead = upcoming
        if ahead is not None:
            yield ahead.result()


def _staged(staging: Staging, first: int, last: int) -> list[tuple[str, str]]:
    """The entries to write of a batch, in primary-key order: `(id, body)`."""
    return staging.conn.execute(
        f"SELECT id, body FROM entries WHERE seq BETWEEN ? AND ? AND state = {NEW} ORDER BY id",
        (first, last),
    ).fetchall()


def _repeated_key(error: Any) -> bool:
    """A COPY refused for a key the table already holds: SQLSTATE 23505, or on Citus, which
    relays a shard's refusal of a COPY as an internal error (XX000), that error's message in
    English. (A server that words its messages in another language is caught by
    `PostgresBulkWriter._any_stored` instead: a look-up of the batch's records.)"""
    if error.sqlstate == "23505":
        return True
    message = error.diag.message_primary or ""
    return message.startswith("duplicate key value violates unique constraint")


def _uuid_array(ids: Sequence[str]) -> Any:
    """Ids for a `%s::uuid[]` parameter: hex ids as one array literal the server casts (a
    Python list is adapted an element at a time, holding the GIL), anything else as a list."""
    return "{" + ",".join(ids) + "}" if is_hex32_run(ids) else list(ids)


def _copy_text(text: str) -> str:
    """A text field of COPY's text format (a topic: no escapes needed, checked)."""
    if not _plain(text):
        raise ValueError(f"topic {text!r} would need escaping in COPY")
    return text


def _plain(text: str) -> bool:
    """Printable ASCII without a backslash: the same text in COPY's text format, as `bytea`
    input (the escape format) and in every client encoding."""
    return text.isascii() and text.isprintable() and "\\" not in text


def bulk_writer(database: Database, table: str) -> BulkWriter:
    if database.backend == "sqlite":
        return SQLiteBulkWriter(database, table)
    return PostgresBulkWriter(database, table)
