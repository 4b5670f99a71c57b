"""Catch-up projections: read the log from a tracking position, apply, and write the new
position in the same transaction as the rows.

The library's SQLite recorder has no subscriptions, so every reader catches up by reading the
notification log from its own position up to the head it saw when it started (on PostgreSQL
the same polling works; the library's LISTEN/NOTIFY subscription is not needed for it). The
position moves in ranges of notification ids, so it advances past notifications the
projection ignores and never reads them again. Two processes catching up at once cannot both
apply the same range: each transaction reads the position with the tracking row locked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from eventsourcing.persistence import Notification
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from dangliang.ledger.eventlog import EventLog

tracking_metadata = MetaData()

projection_tracking = Table(
    "projection_tracking",
    tracking_metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

Progress = Callable[[int, int], Any]


class ConcurrentCatchUp(Exception):
    """Another process moved this projection's position first; read again from there."""


class Projection(Protocol):
    name: str  # its tracking name
    batch_size: int  # notification ids per transaction

    def create(self, engine: Engine) -> None:
        """Create the read model's tables if they are missing."""

    def drop(self, engine: Engine) -> None:
        """Drop the read model's tables and its tracking row."""

    def process(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        """Apply the notifications with ids in (start, stop] to the read model."""


def position(conn: Connection, name: str) -> int:
    found = conn.execute(
        select(projection_tracking.c.position).where(projection_tracking.c.name == name)
    ).scalar_one_or_none()
    return int(found) if found is not None else 0


def positions(conn: Connection, names: Iterable[str]) -> dict[str, int]:
    """The positions of several projections, in one query (0 for one not started)."""
    wanted = list(names)
    query = select(projection_tracking.c.name, projection_tracking.c.position).where(
        projection_tracking.c.name.in_(wanted)
    )
    found = {name: at for name, at in conn.execute(query)}
    return {name: int(found.get(name) or 0) for name in wanted}


def ensure_tracking_row(engine: Engine, name: str) -> None:
    try:
        with engine.begin() as conn:
            query = select(projection_tracking.c.name).where(projection_tracking.c.name == name)
            if conn.execute(query).first() is None:
                conn.execute(projection_tracking.insert().values(name=name, position=0))
    except IntegrityError:
        pass  # another process inserted it first


def forget_tracking(conn: Connection, name: str) -> None:
    conn.execute(projection_tracking.delete().where(projection_tracking.c.name == name))


def move_position(conn: Connection, name: str, expected: int, new: int) -> None:
    result = conn.execute(
        update(projection_tracking)
        .where(projection_tracking.c.name == name, projection_tracking.c.position == expected)
        .values(position=new)
    )
    if result.rowcount != 1:
        raise ConcurrentCatchUp(name)


def locked_position(conn: Connection, name: str) -> int:
    """The position, read inside the writing transaction with the tracking row locked: a
    second process catching up waits here and then sees the first one's new position, so
    a range is never applied twice (SQLite: the transaction began IMMEDIATE, which already
    serialises writers; PostgreSQL: SELECT … FOR UPDATE)."""
    query = select(projection_tracking.c.position).where(projection_tracking.c.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).scalar_one_or_none()
    return int(found) if found is not None else 0


def catch_up(
    engine: Engine,
    log: EventLog,
    projection: Projection,
    *,
    until: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Bring the projection up to the log's head (or `until`); return its new position."""
    ensure_tracking_row(engine, projection.name)
    head = log.head() if until is None else until
    while True:
        with engine.begin() as conn:
            start = locked_position(conn, projection.name)
            if start >= head:
                return start
            stop = min(start + projection.batch_size, head)
            projection.process(conn, log, start, stop)
            move_position(conn, projection.name, start, stop)
        if progress is not None:
            progress(stop, head)


def notifications_in(
    log: EventLog, start: int, stop: int, topics: tuple[str, ...], page: int = 10_000
) -> Iterator[Notification]:
    """The notifications of the given topics with ids in (start, stop], in log order."""
    while start < stop:
        found = log.app_recorder.select_notifications(
            start=start, limit=page, stop=stop, topics=topics, inclusive_of_start=False
        )
        yield from found
        if len(found) < page:
            return
        start = found[-1].id


def topic_of(cls: type) -> str:
    from eventsourcing.utils import get_topic

    return get_topic(cls)


def create_missing(bind: Engine | Connection, *metadatas: MetaData) -> None:
    """Create those of the metadatas' tables (with their indexes) the database lacks: the
    table names are read once, where `create_all` asks once per table (a bootstrap of an
    existing county asked ~20 times). On an engine, in one transaction (SQLite's write
    engine begins IMMEDIATE: two processes starting at once take turns)."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            create_missing(conn, *metadatas)
        return
    existing = set(inspect(bind).get_table_names())
    for metadata in metadatas:
        missing = [t for t in metadata.sorted_tables if t.name not in existing]
        if missing:
            metadata.create_all(bind, tables=missing, checkfirst=False)


def empty_tables(engine: Engine, metadata: MetaData, name: str) -> None:
    """Drop a small projection's contents and its tracking position, in one transaction."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        forget_tracking(conn, name)
