"""DataImport: the audit trail of every file imported (导入记录) — which file, by whom, what it did.

Each Recorded service event carries the `import_ref` (file digest) of the file that brought
it; this aggregate ties that digest to the file's name and the counts of the run.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event


class DataImport(Aggregate):
    class Completed(Aggregate.Created):
        """导入完成."""

        kind: str
        file_name: str
        import_ref: str
        rows: int
        inserted: int
        already_present: int
        rejected: int
        actor: str

    @event(Completed)
    def __init__(
        self,
        kind: str,
        file_name: str,
        import_ref: str,
        rows: int,
        inserted: int,
        already_present: int,
        rejected: int,
        actor: str,
    ) -> None:
        self.kind = kind
        self.file_name = file_name
        self.import_ref = import_ref
        self.rows = rows
        self.inserted = inserted
        self.already_present = already_present
        self.rejected = rejected
        self.actor = actor
