"""The event log: eventsourcing's Application on the native recorder for the configured backend.

The library's SQLite recorder is the embedded default (one file, zero setup); its PostgreSQL
recorder is for production. Both are used as they are; `dangliang.bulk` adds a batched append
path for service records that writes the very rows the library would write.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import (
    ApplicationRecorder,
    JSONTranscoder,
    Transcoding,
)

from dangliang.settings import Database


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
        super().__init__(env=database.eventsourcing_env())

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

    def head(self) -> int:
        """The last notification id in the log (0 when empty)."""
        return self.app_recorder.max_notification_id() or 0
