"""Sealing at write time (封存): the transaction that appends events extends the hash chain
before it commits.

Every way events reach the log goes through here — the library's recorder (every command:
reference loads, corrections, policy changes, runs, approvals, users) through the recorder
classes (SQLite's below, PostgreSQL's in `sealing_postgres`, imported only for a PostgreSQL
log), chosen by `EventLog`; the batched import path (`bulk`) through
`seal_appended` inside each batch's transaction. Writers are serialised where events are
appended (SQLite: one writer at a time; PostgreSQL: the library's `EXCLUSIVE` lock on the
events table, taken before the insert), so the chain's head read inside the transaction is
the head the new events follow, and notification ids are issued in commit order.

Before sealing, the transaction checks that the only unsealed events are its own. If older
unsealed events exist — appended by a version of dangliang that chained lazily, or written
into the table around dangliang — the write is refused (rolled back) until someone looks at
them and runs `audit seal` (`seal_late`), which seals them and records the range, the time
and who did it in `audit_late_seals`, so `audit verify` can say the chain vouches for those
events only from that moment.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from dangliang.domain.errors import DomainError
from dangliang.ledger.chain import (
    Tables,
    count_after,
    extend,
    last_event_id,
    nth_after,
    stored_head,
)

LATE_SEALS = "audit_late_seals"


class UnsealedEvents(DomainError):
    """Events are stored that the chain has not sealed: new writes wait for `audit seal`."""

    def __init__(self, count: int, first: int, last: int):
        self.count, self.first, self.last = count, first, last
        super().__init__(
            f"事件日志中有 {count} 个事件（第 {first}–{last} 号）未封存进哈希链：它们由按旧方式"
            "延后入链的版本写入，或绕过本系统写入。请先核对这些事件，再运行 "
            "dangliang audit seal 封存它们；在此之前不接受新的写入",
            f"{count} stored events (ids {first}–{last}) are not sealed into the hash chain: "
            "they were written by a version that chained later, or around dangliang. Check "
            "them, then run `dangliang audit seal`; no new writes are accepted until then",
        )


def seal_appended(tables: Tables, appended: int) -> None:
    """Inside the appending transaction, after the insert: seal the `appended` new events,
    refusing (raising, so the transaction rolls back) when other events are unsealed too."""
    head = stored_head(tables)
    unsealed = count_after(tables, head[0])
    if unsealed > appended:
        older = unsealed - appended  # ids come in commit order: the older ones come first
        first, last = nth_after(tables, head[0], 1), nth_after(tables, head[0], older)
        raise UnsealedEvents(older, first, last)
    if unsealed:
        extend(tables, head, last_event_id(tables))


def seal_late(tables: Tables, actor: str, reason: str) -> tuple[int, int, int]:
    """`audit seal`: seal every unsealed event as it is stored now and record that it was
    done late. The caller holds the log's write lock. Returns (count, first id, last id)."""
    head = stored_head(tables)
    last = last_event_id(tables)
    if last <= head[0]:
        return 0, 0, 0
    count = extend(tables, head, last)
    tables.fetch(
        f"INSERT INTO {late_seals_table(tables)} (first_id, last_id, events, sealed_at, actor, "
        f"reason) VALUES ({', '.join([tables.mark] * 6)}) RETURNING first_id",
        (head[0] + 1, last, count, datetime.now(UTC).isoformat(), actor, reason),
    )
    return count, head[0] + 1, last


def late_seals_table(tables: Tables) -> str:
    """`audit_late_seals` beside the chain table (same schema qualification)."""
    schema, dot, _ = tables.chain.rpartition(".")
    return f"{schema}{dot}{LATE_SEALS}"


def late_seals(tables: Tables) -> list[tuple[int, int, int, str, str, str]]:
    """Every `audit seal`: (first id, last id, events, sealed at, actor, reason), in order."""
    return [
        (int(a), int(b), int(n), str(at), str(actor), str(reason))
        for a, b, n, at, actor, reason in tables.fetch(
            f"SELECT first_id, last_id, events, sealed_at, actor, reason "
            f"FROM {late_seals_table(tables)} ORDER BY first_id"
        )
    ]


def create_statements(chain: str, late: str, id_type: str) -> list[str]:
    """The chain's table and the late seals' table (`id_type`: the notification id's)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {chain} (notification_id {id_type} NOT NULL PRIMARY KEY, "
        "digest VARCHAR(64) NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {late} (first_id {id_type} NOT NULL PRIMARY KEY, "
        f"last_id {id_type} NOT NULL, events {id_type} NOT NULL, sealed_at VARCHAR(40) NOT NULL, "
        "actor TEXT NOT NULL, reason TEXT NOT NULL)",
    ]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """A PostgreSQL table name with its schema, both quoted."""
    return f"{_quoted(schema)}.{_quoted(name)}"


_GATES: dict[str, threading.RLock] = {}
_GATES_LOCK = threading.Lock()


def sqlite_write_gate(db_name: str) -> threading.RLock:
    """One lock per SQLite file in this process, held around the library's appends.

    The library's connection pool lets one thread at a time queue for a connection, and a
    thread asking for its one writer connection queues holding that place. Without this gate
    three threads could wait on each other until the pool's timeout (a 500 under load): a
    read model's catch-up holds the file's write lock and queues for a reader connection behind
    a second append, which waits for the writer connection, which a first append holds while it
    waits for the file's write lock. With the gate, an append asks for the writer connection
    only when no other append of this process has it, so nobody queues holding that place.
    SQLite has one writer per file anyway; other processes never share this pool."""
    with _GATES_LOCK:
        return _GATES.setdefault(db_name, threading.RLock())


class SealingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, sealing what it inserts before the commit."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with sqlite_write_gate(self.datastore.pool.db_name):
            return super().insert_events(stored_events, **kwargs)

    def construct_create_table_statements(self) -> list[str]:
        # On SQLite an INTEGER PRIMARY KEY is the rowid itself: no second index to keep.
        return [
            *super().construct_create_table_statements(),
            *create_statements("audit_chain", LATE_SEALS, "INTEGER"),
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # the inserts come first, so the transaction holds SQLite's write lock when it reads
        # the chain's head
        ids = super()._insert_events(c, stored_events, **kwargs)
        tables = Tables(c.sqlite_cursor.connection, "sqlite", self.events_table_name)
        seal_appended(tables, len(stored_events))
        return ids


__all__ = [
    "LATE_SEALS",
    "SealingSQLiteApplicationRecorder",
    "UnsealedEvents",
    "create_statements",
    "late_seals",
    "qualified",
    "seal_appended",
    "seal_late",
    "sqlite_write_gate",
]
