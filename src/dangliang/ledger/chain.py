"""Tamper evidence (防篡改): a SHA-256 hash chain over the event log.

Every stored event is hashed together with the digest of the event before it, so the digest
of the last one (the *head*) depends on the bytes, the order and the presence of every event
up to it. The head is printed with every run and goes into the signed approval document;
`verify` later recomputes the chain from the events table and names the first event whose
stored bytes, order or presence changed since it was chained.

What it proves, and what it does not: someone who can write the events table can usually
write `audit_chain` too, and could recompute the whole chain after tampering. The stored chain
therefore localises *naive* tampering (an edited, deleted, moved or inserted row shows up as
a broken link at that event), while only a head kept outside the database — the one printed on
a signed run document, passed to `verify` as `expected_head` — proves that nothing up to it
changed. For the same reason the chain must never be rebuilt from the log as a matter of
routine: a rebuild would launder whatever was changed before it.

The chain is sealed at write time (`sealing`): the transaction that appends events — the
library's recorder for every command, the bulk writer for imports — hashes them onto the chain
before it commits, so there is never a moment when an event is stored but not sealed, and an
edit made at any time after a command returns breaks a link. A write is refused while any
stored event is unsealed (left by a version that chained lazily, or written around dangliang);
`audit seal` seals such events deliberately and records that it did.

Record encoding (version 1), so an auditor can recompute the chain with any tool
------------------------------------------------------------------------------------
For each stored event, in ascending notification id (SQLite: the `rowid` of `stored_events`;
PostgreSQL: `notification_id` of `dangliang_events`; gaps in the ids are simply skipped):

    record = F(notification_id) || F(originator_id) || F(originator_version) || F(topic)
             || F(state)
    h_n    = SHA-256(h_prev || record)          (32 raw bytes; h_0 = 32 zero bytes)

where `||` is concatenation and `F(x)` is an 8-byte big-endian unsigned length followed by
the field's bytes:

- notification_id, originator_version: ASCII decimal, e.g. `1234`;
- originator_id: the canonical text of the uuid, 36 ASCII characters, lowercase, with hyphens
  (`2e78ca8f-3947-55de-b7d6-13463ebec232`). SQLite stores it as 32 lowercase hex digits and
  PostgreSQL as a `uuid`; both are encoded in this one form;
- topic: its UTF-8 bytes;
- state: the stored bytes exactly as they are (the library's JSON, uncompressed, no cipher).

A value that is not in its column's proper form or type (possible only by writing the table
by hand: e.g. a SQLite originator id that is not 32 lowercase hex digits, a version stored as
text, a state or topic whose SQLite storage class was changed between BLOB and TEXT with the
same bytes) is encoded as `?` followed by its bytes or text, so it can never encode like a
proper value: the chain covers each field's type as well as its bytes; a NULL field
is encoded as the length 2^64 − 1 with no bytes. `audit_chain.digest` holds h_n as 64
lowercase hex digits. Example with Python: `hashlib.sha256(prev + record).digest()`; see
`encode_record` and `link`.

The chain's verification — `verify`, its report and the kinds of problem it names — is in
`chain_verification`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    select,
)

GENESIS = bytes(32)
GENESIS_HEX = "0" * 64
NAME = "chain"

metadata = MetaData()
audit_chain = Table(
    "audit_chain",
    metadata,
    # On SQLite an INTEGER PRIMARY KEY is the rowid itself: no second index to keep.
    Column(
        "notification_id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("digest", String(64), nullable=False),
)

_LENGTH = struct.Struct(">Q").pack
_NULL_FIELD = b"\xff" * 8
HEX32 = re.compile(r"[0-9a-f]{32}")
_UUID36 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class ChainError(Exception):
    """The chain table cannot be continued (a stored digest is not a digest)."""


# ---- the record encoding ----------------------------------------------------------------


def field(data: bytes) -> bytes:
    """F(x): the 8-byte big-endian length of the bytes, then the bytes."""
    return _LENGTH(len(data)) + data


def _text_field(value: Any) -> bytes:
    """A text column's value: its UTF-8 bytes. Anything else (a SQLite BLOB or number written
    by hand into the TEXT column) is marked with `?`, so retyping a value is a change."""
    if value is None:
        return _NULL_FIELD
    if isinstance(value, str):
        return field(value.encode("utf-8"))
    return field(b"?" + _improper(value))


def _improper(value: Any) -> bytes:
    """A value not in its column's proper type, as bytes after the `?` mark."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return repr(value).encode("utf-8")


def _int_field(value: Any) -> bytes:
    if value is None:
        return _NULL_FIELD
    if type(value) is int:
        return field(b"%d" % value)
    return field(b"?" + _improper(value))


def _id_field(value: Any, dialect: str) -> bytes:
    """The originator id in its canonical text form, whichever way the backend stores it."""
    if value is None:
        return _NULL_FIELD
    if isinstance(value, str):
        if dialect == "sqlite":
            if len(value) == 32 and HEX32.fullmatch(value):
                return field(uuid_text(value).encode("ascii"))
        elif _UUID36.fullmatch(value):  # PostgreSQL: uuid::text is already canonical
            return field(value.encode("ascii"))
        return field(b"?" + value.encode("utf-8"))
    raw = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value)
    return field(b"?" + (raw.hex() if isinstance(raw, bytes) else raw).encode("utf-8"))


def uuid_text(hex32: str) -> str:
    """32 hex digits as a uuid's canonical text (8-4-4-4-12), as PostgreSQL prints one."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def _state_field(value: Any) -> bytes:
    """The stored bytes. Anything but bytes (SQLite: the BLOB replaced by TEXT of the very
    same bytes, or by a number) is marked with `?`: the chain covers the type too."""
    if value is None:
        return _NULL_FIELD
    if isinstance(value, bytes):
        return _LENGTH(len(value)) + value
    return field(b"?" + _improper(value))


def encode_row(row: Sequence[Any], dialect: str) -> bytes:
    """`record` of one row `(notification_id, originator_id, version, topic, state)` as read
    from the events table (see the module docstring)."""
    nid, oid, version, topic, state = row
    if type(nid) is int and type(version) is int and type(topic) is str and type(state) is bytes:
        n, v = b"%d" % nid, b"%d" % version  # the usual row: one join, no per-field calls
        return b"".join(
            (
                _LENGTH(len(n)),
                n,
                _id_field(oid, dialect),
                _LENGTH(len(v)),
                v,
                _topic_field(topic),
                _LENGTH(len(state)),
                state,
            )
        )
    return b"".join(
        (
            _int_field(nid),
            _id_field(oid, dialect),
            _int_field(version),
            _text_field(topic),
            _state_field(state),
        )
    )


@functools.lru_cache(maxsize=4096)
def _topic_field(topic: str) -> bytes:
    """A log has a few dozen topics: encode each once."""
    return _text_field(topic)


def encode_record(
    notification_id: int, originator_id: str, originator_version: int, topic: str, state: bytes
) -> bytes:
    """The record bytes of one well-formed stored event (`originator_id`: any uuid text)."""
    canonical = str(uuid.UUID(originator_id))
    return encode_row((notification_id, canonical, originator_version, topic, state), "")


def link(previous: bytes, record: bytes) -> bytes:
    """h_n = SHA-256(h_prev || record): the next digest of the chain (32 raw bytes)."""
    return hashlib.sha256(previous + record).digest()


# ---- reading the tables ------------------------------------------------------------------


@dataclass(frozen=True)
class Tables:
    """The events table and the chain table on one DB-API connection, inside whatever
    transaction it is in: the library's own connection while it appends (sealing), a
    SQLAlchemy connection's driver connection when reading (verification, heads). Names are
    as they must appear in SQL (schema-qualified on PostgreSQL where the connection does not
    set the search path)."""

    dbapi: Any
    dialect: str  # "sqlite" | "postgresql"
    events: str
    chain: str = "audit_chain"

    @property
    def mark(self) -> str:
        return "%s" if self.dialect == "postgresql" else "?"

    @property
    def id_column(self) -> str:
        """The events' notification id: SQLite's rowid, PostgreSQL's `notification_id`."""
        return "notification_id" if self.dialect == "postgresql" else "rowid"

    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows as plain tuples (skipping SQLAlchemy's result rows saves about a second per
        million events). PostgreSQL: binary results, so bytea arrives as it is stored."""
        if self.dialect == "postgresql":
            from psycopg.rows import tuple_row

            cursor = self.dbapi.cursor(binary=True, row_factory=tuple_row)
        else:
            cursor = self.dbapi.cursor()
            cursor.row_factory = None  # the library's connection makes sqlite3.Row
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def insert_digests(self, rows: list[tuple[int, str]]) -> None:
        """Append chain rows: COPY on PostgreSQL, one executemany on SQLite."""
        if not rows:
            return
        cursor = self.dbapi.cursor()
        try:
            if self.dialect == "postgresql":
                copy_sql = f"COPY {self.chain} (notification_id, digest) FROM STDIN"
                with cursor.copy(copy_sql) as copy:  # text format: ints and hex digits
                    for page in range(0, len(rows), 10_000):
                        copy.write("".join(f"{n}\t{d}\n" for n, d in rows[page : page + 10_000]))
            elif all(n == rows[0][0] + i for i, (n, _) in enumerate(rows)):
                # consecutive ids (a batch): one statement, the digests as a JSON array of
                # hex text (nothing to escape), read inside SQLite
                cursor.execute(
                    f"INSERT INTO {self.chain} (notification_id, digest) "
                    "SELECT ? + key, value FROM json_each(?)",
                    (rows[0][0], '["' + '","'.join(d for _, d in rows) + '"]'),
                )
            else:
                cursor.executemany(
                    f"INSERT INTO {self.chain} (notification_id, digest) VALUES (?, ?)", rows
                )
        finally:
            cursor.close()


def tables_of(conn: Connection, events_table: str) -> Tables:
    """The tables as seen through a SQLAlchemy connection (its search path applies)."""
    return Tables(conn.connection.dbapi_connection, conn.dialect.name, events_table)


def _events_sql(tables: Tables) -> tuple[str, str]:
    """A range of events in id order, and the next id after a range."""
    events = tables.events
    if tables.dialect == "postgresql":
        return (
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            f"FROM {events} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id",
            f"SELECT min(notification_id) FROM {events} WHERE notification_id > %s",
        )
    return (
        "SELECT rowid, originator_id, originator_version, topic, state "
        f"FROM {events} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
        f"SELECT min(rowid) FROM {events} WHERE rowid > ?",
    )


def _pages(
    tables: Tables, sql: tuple[str, str], after: int, upto: int, page: int
) -> Iterator[list[Any]]:
    """The rows with ids in (after, upto], in id order, `page` ids at a time.

    Pages are ranges of ids, not `LIMIT n` queries: on a freshly imported PostgreSQL table
    (no statistics yet) the planner sorts the whole rest of the range for each `LIMIT` page
    (measured 0.6 s a page, on disk). Ids have gaps on PostgreSQL; after an empty range the
    next id is looked up, so a large gap costs one query."""
    select_range, next_id = sql
    while after < upto:
        until = min(after + page, upto)
        rows = tables.fetch(select_range, (after, until))
        if rows:
            yield rows
            after = until
            continue
        found = tables.fetch(next_id, (until,))[0][0]
        if found is None or found > upto:
            return
        after = int(found) - 1


def event_pages(tables: Tables, after: int, upto: int, page: int) -> Iterator[list[Any]]:
    """The events with ids in (after, upto] as `(id, originator_id, version, topic, state)`."""
    yield from _pages(tables, _events_sql(tables), after, upto, page)


def chain_pages(tables: Tables, after: int, upto: int, page: int) -> Iterator[list[Any]]:
    """The chain rows with ids in (after, upto] as `(id, digest)`."""
    mark, table = tables.mark, tables.chain
    sql = (
        f"SELECT notification_id, digest FROM {table} WHERE notification_id > {mark} "
        f"AND notification_id <= {mark} ORDER BY notification_id",
        f"SELECT min(notification_id) FROM {table} WHERE notification_id > {mark}",
    )
    yield from _pages(tables, sql, after, upto, page)


def last_event_id(tables: Tables) -> int:
    column = tables.id_column
    found = tables.fetch(f"SELECT max({column}) FROM {tables.events}")[0][0]
    return int(found or 0)


def count_after(tables: Tables, after: int) -> int:
    """How many events are stored with ids after `after`."""
    column = tables.id_column
    found = tables.fetch(
        f"SELECT count(*) FROM {tables.events} WHERE {column} > {tables.mark}", (after,)
    )
    return int(found[0][0] or 0)


def ids_after(tables: Tables, after: int, limit: int) -> list[int]:
    """The ids of the first `limit` stored events after id `after` (an index range, whatever
    the table's statistics; `count_after` may scan)."""
    column = tables.id_column
    sql = (
        f"SELECT {column} FROM {tables.events} WHERE {column} > {tables.mark} "
        f"ORDER BY {column} LIMIT {int(limit)}"
    )
    return [int(r[0]) for r in tables.fetch(sql, (after,))]


def nth_after(tables: Tables, after: int, n: int) -> int:
    """The id of the `n`-th stored event after id `after` (n ≥ 1)."""
    column = tables.id_column
    sql = (
        f"SELECT {column} FROM {tables.events} WHERE {column} > {tables.mark} "
        f"ORDER BY {column} LIMIT 1 OFFSET {tables.mark}"
    )
    return int(tables.fetch(sql, (after, n - 1))[0][0])


def stored_head(tables: Tables) -> tuple[int, str]:
    """The chain's last (notification id, digest); `(0, "0"*64)` when nothing is sealed."""
    found = tables.fetch(
        f"SELECT notification_id, digest FROM {tables.chain} ORDER BY notification_id DESC LIMIT 1"
    )
    return (0, GENESIS_HEX) if not found else (int(found[0][0]), str(found[0][1]))


def extend(tables: Tables, head: tuple[int, str], upto: int, page: int = 20_000) -> int:
    """Chain every event after `head` up to id `upto` onto it; return how many were chained."""
    previous = unhex(head[1]) if head[0] else GENESIS
    if previous is None:
        raise ChainError(
            f"哈希链第 {head[0]} 号的摘要不是 64 位十六进制，无法续链，请先运行 "
            f"dangliang audit verify / the chain's digest for event {head[0]} is not "
            "64 hex digits, so the chain cannot be continued: run dangliang audit verify"
        )
    chained = 0
    for rows in event_pages(tables, head[0], upto, page):
        out, previous = digests(previous, rows, tables.dialect)
        tables.insert_digests(out)
        chained += len(out)
    return chained


def digests(
    previous: bytes, rows: Iterable[Sequence[Any]], dialect: str
) -> tuple[list[tuple[int, str]], bytes]:
    """The chain over `rows` — `(notification id, originator id, version, topic, state)` in
    id order, as the events table holds them — after the digest `previous`: the chain rows
    and the last digest."""
    sha256 = hashlib.sha256
    out: list[tuple[int, str]] = []
    for row in rows:
        previous = sha256(previous + encode_row(row, dialect)).digest()
        out.append((row[0], previous.hex()))
    return out, previous


def flatten(pages: Iterator[Sequence[Any]]) -> Iterator[Any]:
    for rows in pages:
        yield from rows


def unhex(digest: Any) -> bytes | None:
    """A stored digest as 32 bytes; None when it is not 64 lowercase hex digits."""
    if isinstance(digest, str) and _DIGEST.fullmatch(digest):
        return bytes.fromhex(digest)
    return None


def chain_head(conn: Connection, position: int | None = None) -> tuple[int, str]:
    """The (notification id, digest) of the last chained event at or before `position`
    (the latest when None); `(0, "0"*64)` when nothing is chained. Catch the chain up to the
    position first: this reads only what is already chained."""
    c = audit_chain.c
    query = select(c.notification_id, c.digest).order_by(c.notification_id.desc()).limit(1)
    if position is not None:
        query = query.where(c.notification_id <= position)
    found = conn.execute(query).first()
    return (0, GENESIS_HEX) if found is None else (int(found[0]), str(found[1]))


def format_head(head: tuple[int, str]) -> str:
    """`ID:DIGEST`, the form printed on run documents and accepted by `parse_head`."""
    return f"{head[0]}:{head[1]}"


def parse_head(value: str) -> tuple[int, str]:
    """`ID:DIGEST` (as printed by `format_head`) → (id, digest); ValueError if malformed."""
    nid, sep, digest = value.strip().partition(":")
    digest = digest.strip().lower()
    if not sep or not nid.strip().isdigit() or not _DIGEST.fullmatch(digest):
        raise ValueError(
            f"链头应为 编号:64位十六进制摘要 / a chain head is ID:64-HEX-DIGEST, got {value!r}"
        )
    return int(nid), digest


__all__ = [
    "GENESIS",
    "GENESIS_HEX",
    "ChainError",
    "audit_chain",
    "chain_head",
    "encode_record",
    "format_head",
    "link",
    "metadata",
    "parse_head",
]
