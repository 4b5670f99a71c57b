"""The hash chain kept as a catch-up projection (to be replaced by sealing at write time)."""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, Engine

from dangliang.ledger.chain import (
    GENESIS,
    NAME,
    ChainError,
    _insert_digests,
    chain_head,
    encode_row,
    event_pages,
    metadata,
    unhex,
)
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.tracking import forget_tracking

# ---- the projection ------------------------------------------------------------------------


class ChainProjection:
    """Keeps `audit_chain`: one chained digest per stored event, in notification-id order."""

    name = NAME
    batch_size = 200_000  # notification ids per transaction
    page = 20_000  # events read per query

    def create(self, engine: Engine) -> None:
        metadata.create_all(engine)

    def drop(self, engine: Engine) -> None:
        """Drop the chain and its position. Only for tests and deliberate re-chaining after
        a passed `verify`: a chain rebuilt from a tampered log hides the tampering."""
        metadata.drop_all(engine)
        with engine.begin() as conn:
            forget_tracking(conn, self.name)

    def process(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        dialect = conn.dialect.name
        last = chain_head(conn, start)
        previous = unhex(last[1]) if last[0] else GENESIS
        if previous is None:
            raise ChainError(
                f"哈希链第 {last[0]} 号的摘要不是 64 位十六进制，无法续链，请先运行 "
                f"dangliang audit verify / the chain's digest for event {last[0]} is not "
                "64 hex digits, so the chain cannot be continued: run dangliang audit verify"
            )
        sha256 = hashlib.sha256
        for rows in event_pages(conn, log.events_table, start, stop, self.page):
            out: list[tuple[int, str]] = []
            for row in rows:
                previous = sha256(previous + encode_row(row, dialect)).digest()
                out.append((row[0], previous.hex()))
            _insert_digests(conn, out)
