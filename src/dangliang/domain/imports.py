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


class BulkImport(Aggregate):
    """一次批量导入: the facts every record of one bulk import shares, said once.

    `Started` says who imported which file; before each batch of records is appended, a
    `BatchWritten` event is appended in the same transaction. The records of the compact
    stored form (`ledger.compact`) name their batch's event by its position in the log and
    take their time, actor and import reference from it, instead of repeating them in each
    record. A killed import leaves `Started` and one `BatchWritten` per committed batch, so
    the log says how far it got.
    """

    class Started(Aggregate.Created):
        """批量导入开始."""

        kind: str
        file_name: str
        import_ref: str
        actor: str

    class BatchWritten(Aggregate.Event):
        """一批记录已写入: the batch's number (from 1) and how many records it offered
        (records the log already had are then skipped by its key)."""

        batch: int
        rows: int

    @event(Started)
    def __init__(self, kind: str, file_name: str, import_ref: str, actor: str) -> None:
        self.kind = kind
        self.file_name = file_name
        self.import_ref = import_ref
        self.actor = actor
        self.batches = 0

    @event(BatchWritten)
    def batch_written(self, batch: int, rows: int) -> None:
        self.batches = batch
