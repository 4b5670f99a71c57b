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

The chain is a catch-up projection (`base.Projection`): it reads the events table directly
with SQL in notification-id order and in pages, never builds domain events, and writes one
row per event to `audit_chain` in the same transaction as its tracking position.

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

A value that is not in its column's proper form (possible only by writing the table by hand:
e.g. a SQLite originator id that is not 32 lowercase hex digits, or a non-integer version) is
encoded as `?` followed by its text, so it can never encode like a proper value; a NULL field
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
from collections.abc import Iterator, Sequence
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


def _field(data: bytes) -> bytes:
    return _LENGTH(len(data)) + data


def _text_field(value: Any) -> bytes:
    """A text column's value: its UTF-8 bytes (a SQLite BLOB written by hand: as stored)."""
    if value is None:
        return _NULL_FIELD
    if isinstance(value, str):
        return _field(value.encode("utf-8"))
    return _field(bytes(value))


def _int_field(value: Any) -> bytes:
    if value is None:
        return _NULL_FIELD
    if type(value) is int:
        return _field(b"%d" % value)
    return _field(b"?" + str(value).encode("utf-8"))


def _id_field(value: Any, dialect: str) -> bytes:
    """The originator id in its canonical text form, whichever way the backend stores it."""
    if value is None:
        return _NULL_FIELD
    if isinstance(value, str):
        if dialect == "sqlite":
            if len(value) == 32 and HEX32.fullmatch(value):
                canonical = f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
                return _field(canonical.encode("ascii"))
        elif _UUID36.fullmatch(value):  # PostgreSQL: uuid::text is already canonical
            return _field(value.encode("ascii"))
        return _field(b"?" + value.encode("utf-8"))
    raw = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value)
    return _field(b"?" + (raw.hex() if isinstance(raw, bytes) else raw).encode("utf-8"))


def _state_field(value: Any) -> bytes:
    if value is None:
        return _NULL_FIELD
    if isinstance(value, bytes):
        return _LENGTH(len(value)) + value
    if isinstance(value, str):  # SQLite: a BLOB replaced by TEXT by hand
        return _field(value.encode("utf-8"))
    return _field(bytes(value))


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


def _fetch(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """Rows as plain tuples from the DB-API cursor of this connection (same transaction):
    skipping SQLAlchemy's result rows saves about a second per million events."""
    # PostgreSQL: binary results, so bytea arrives as it is stored instead of as hex text
    binary = {"binary": True} if conn.dialect.name == "postgresql" else {}
    cursor = conn.connection.cursor(**binary)
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _events_sql(dialect: str, events_table: str) -> tuple[str, str]:
    """A range of events in id order, and the next id after a range."""
    if dialect == "postgresql":
        return (
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            f"FROM {events_table} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id",
            f"SELECT min(notification_id) FROM {events_table} WHERE notification_id > %s",
        )
    return (
        "SELECT rowid, originator_id, originator_version, topic, state "
        f"FROM {events_table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
        f"SELECT min(rowid) FROM {events_table} WHERE rowid > ?",
    )


def _pages(
    conn: Connection, sql: tuple[str, str], after: int, upto: int, page: int
) -> Iterator[list[Any]]:
    """The rows with ids in (after, upto], in id order, `page` ids at a time.

    Pages are ranges of ids, not `LIMIT n` queries: on a freshly imported PostgreSQL table
    (no statistics yet) the planner sorts the whole rest of the range for each `LIMIT` page
    (measured 0.6 s a page, on disk). Ids have gaps on PostgreSQL; after an empty range the
    next id is looked up, so a large gap costs one query."""
    select_range, next_id = sql
    while after < upto:
        until = min(after + page, upto)
        rows = _fetch(conn, select_range, (after, until))
        if rows:
            yield rows
            after = until
            continue
        found = _fetch(conn, next_id, (until,))[0][0]
        if found is None or found > upto:
            return
        after = int(found) - 1


def event_pages(
    conn: Connection, events_table: str, after: int, upto: int, page: int
) -> Iterator[list[Any]]:
    """The events with ids in (after, upto] as `(id, originator_id, version, topic, state)`."""
    yield from _pages(conn, _events_sql(conn.dialect.name, events_table), after, upto, page)


def chain_pages(conn: Connection, after: int, upto: int, page: int) -> Iterator[list[Any]]:
    """The chain rows with ids in (after, upto] as `(id, digest)`."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    table = audit_chain.name
    sql = (
        f"SELECT notification_id, digest FROM {table} WHERE notification_id > {mark} "
        f"AND notification_id <= {mark} ORDER BY notification_id",
        f"SELECT min(notification_id) FROM {table} WHERE notification_id > {mark}",
    )
    yield from _pages(conn, sql, after, upto, page)


def _insert_digests(conn: Connection, rows: list[tuple[int, str]]) -> None:
    """Append chain rows: COPY on PostgreSQL, one executemany on SQLite."""
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.cursor()
        try:
            copy_sql = f"COPY {audit_chain.name} (notification_id, digest) FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    conn.exec_driver_sql(
        f"INSERT INTO {audit_chain.name} (notification_id, digest) VALUES (?, ?)", rows
    )


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
