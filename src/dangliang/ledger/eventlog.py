"""The event log: eventsourcing's Application on the native recorder for the configured backend.

The library's SQLite recorder is the embedded default (one file, zero setup); its PostgreSQL
recorder is for production. Both are used with one addition: they seal what they append into
the hash chain inside the same transaction (`sealing`). `bulk` adds a batched append path for
service records that writes the very rows the library would write, and seals them the same way.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import date
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application, project_aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
)

from dangliang.ledger.chain import Tables
from dangliang.ledger.compact import BatchFactsReader, CompactMapper
from dangliang.ledger.sealing import SealingSQLiteApplicationRecorder, seal_late
from dangliang.settings import Database

# The recorder of each backend, as the library's topic (module:class): the library imports
# the module when a log of that backend opens, so a SQLite log never loads PostgreSQL's driver.
_SEALING_RECORDERS = {
    "sqlite": f"{SealingSQLiteApplicationRecorder.__module__}:"
    f"{SealingSQLiteApplicationRecorder.__qualname__}",
    "postgres": "dangliang.ledger.sealing_postgres:SealingPostgresApplicationRecorder",
}


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class EventLog(Application[Any]):
    """Every fact of the county, in one ordered log (notification ids give the order)."""

    name = "dangliang"
    is_snapshotting_enabled = False

    def __init__(self, database: Database):
        self.database = database
        env = {
            **database.eventsourcing_env(),
            "APPLICATION_RECORDER_TOPIC": _SEALING_RECORDERS[database.backend],
        }
        super().__init__(env=env)
        mapper = self.mapper
        assert isinstance(mapper, CompactMapper)
        mapper.batch_facts = BatchFactsReader(self.app_recorder, mapper)

    def construct_mapper(self) -> Mapper[Any]:
        """The library's mapper, which also reads the compact form of bulk-imported service
        records (`compact`)."""
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=CompactMapper
        )

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    @property
    def app_recorder(self) -> ApplicationRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ApplicationRecorder)
        return recorder

    @property
    def events_table(self) -> str:
        return str(self.recorder.events_table_name)  # type: ignore[attr-defined]

    def aggregates(self, ids: Sequence[UUID]) -> dict[UUID, Any]:
        """Those of these aggregates that are stored, each rebuilt from its events as
        `repository.get` rebuilds it, their events read a thousand aggregates a query (a
        reference file of 600 staff: one query where `repository.get` makes 600)."""
        events: dict[UUID, list[Any]] = {}
        for start in range(0, len(ids), 1000):
            for stored in self._events_of(ids[start : start + 1000]):
                oid = cast(UUID, stored.originator_id)  # `_events_of` made it one
                events.setdefault(oid, []).append(self.mapper.to_domain_event(stored))
        return {oid: project_aggregate(None, found) for oid, found in events.items()}

    def _events_of(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of these aggregates, by aggregate, in version order."""
        recorder: Any = self.recorder
        if self.database.backend == "sqlite":
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    "SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table} WHERE originator_id IN "
                    "(SELECT value FROM json_each(?)) ORDER BY originator_id, originator_version",
                    (json.dumps([i.hex for i in ids]),),
                )
                rows = [tuple(row) for row in cursor.fetchall()]
        else:
            events = recorder.sealing_tables[0]
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(
                    "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                    "FROM unnest(%s::uuid[]) AS wanted(id) CROSS JOIN LATERAL ("
                    f"SELECT * FROM {events} WHERE originator_id = wanted.id "
                    "ORDER BY originator_version) AS e",
                    ([str(i) for i in ids],),
                )
                rows = [tuple(row.values()) for row in cursor.fetchall()]
        return [
            StoredEvent(
                originator_id=oid if isinstance(oid, UUID) else UUID(oid),
                originator_version=version,
                topic=topic,
                state=state if isinstance(state, bytes) else str(state).encode(),
            )
            for oid, version, topic, state in rows
        ]

    def head(self) -> int:
        """The last notification id in the log (0 when empty)."""
        return self.app_recorder.max_notification_id() or 0

    def seal_late(self, actor: str, reason: str) -> tuple[int, int, int]:
        """Seal the events stored but not sealed, holding the log's write lock, and record
        that it was done (see `sealing`). Returns (count, first id, last id)."""
        if self.database.backend == "sqlite":
            return self._seal_late_sqlite(actor, reason)
        from dangliang.ledger.sealing_postgres import SealingPostgresApplicationRecorder

        recorder = self.recorder
        assert isinstance(recorder, SealingPostgresApplicationRecorder)
        events, chain = recorder.sealing_tables
        with recorder.datastore.get_connection() as conn, conn.transaction():
            conn.execute(f"LOCK TABLE {events} IN EXCLUSIVE MODE")  # type: ignore[arg-type]
            return seal_late(Tables(conn, "postgresql", events, chain), actor, reason)

    def _seal_late_sqlite(self, actor: str, reason: str) -> tuple[int, int, int]:
        conn = sqlite3.connect(str(self.database.sqlite_path), isolation_level=None, timeout=60)
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock before the head is read
            try:
                sealed = seal_late(Tables(conn, "sqlite", self.events_table), actor, reason)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return sealed
        finally:
            conn.close()
