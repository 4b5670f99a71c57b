"""Catch-up projections: read the notification log from a tracking position, apply, and write
the new position in the same transaction as the rows.

The library's SQLite recorder has no subscriptions, so every reader catches up by polling the
notification log (`select_notifications`) from its own position up to the head it saw when it
started. The position advances to that head even when the last notifications were of topics the
projection ignores, so it never rescans them. Two processes catching up at once cannot both
apply the same events: the position is moved with a compare-and-set, and the loser rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from dangliang.eventlog import EventLog

tracking_metadata = MetaData()

projection_tracking = Table(
    "projection_tracking",
    tracking_metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


class ConcurrentCatchUp(Exception):
    """Another process moved this projection's position first; read again from there."""


class Projection(Protocol):
    name: str
    topics: Sequence[str]
    metadata: MetaData

    def apply(self, conn: Connection, log: EventLog, notifications: Sequence[Notification]) -> None:
        """Apply a batch of notifications (in log order) to the read model."""


def position(conn: Connection, name: str) -> int:
    found = conn.execute(
        select(projection_tracking.c.position).where(projection_tracking.c.name == name)
    ).scalar_one_or_none()
    return int(found) if found is not None else 0


def ensure_tracking_row(engine: Engine, name: str) -> None:
    try:
        with engine.begin() as conn:
            if (
                conn.execute(
                    select(projection_tracking.c.name).where(projection_tracking.c.name == name)
                ).first()
                is None
            ):
                conn.execute(projection_tracking.insert().values(name=name, position=0))
    except IntegrityError:
        pass  # another process inserted it first


def move_position(conn: Connection, name: str, expected: int, new: int) -> None:
    result = conn.execute(
        update(projection_tracking)
        .where(projection_tracking.c.name == name, projection_tracking.c.position == expected)
        .values(position=new)
    )
    if result.rowcount != 1:
        raise ConcurrentCatchUp(name)


def catch_up(
    engine: Engine,
    log: EventLog,
    projection: Projection,
    *,
    batch_size: int = 5_000,
    progress: Callable[[int, int], Any] | None = None,
) -> int:
    """Bring the projection up to the log's current head; return the number of events applied."""
    ensure_tracking_row(engine, projection.name)
    head = log.head()
    applied = 0
    while True:
        with engine.connect() as conn:
            start = position(conn, projection.name)
        if start >= head:
            return applied
        notifications = log.app_recorder.select_notifications(
            start=start,
            limit=batch_size,
            stop=head,
            topics=projection.topics,
            inclusive_of_start=False,
        )
        new_position = notifications[-1].id if len(notifications) == batch_size else head
        try:
            with engine.begin() as conn:
                projection.apply(conn, log, notifications)
                move_position(conn, projection.name, start, new_position)
        except ConcurrentCatchUp:
            continue
        applied += len(notifications)
        if progress is not None:
            progress(new_position, head)


def topic_of(cls: type) -> str:
    from eventsourcing.utils import get_topic

    return get_topic(cls)
