"""Import service records (服务记录导入): validate the whole file, then append in batches.

The service records' `BulkSpec` for the bulk import (`bulk_import`): the row model, the
checks against the reference data (institution, staff posted there that day, item with a
value on the date, no date in the future), the record's id and the compact stored form of its
`ServiceRecord.Recorded` event (`ledger.compact`). Pass 1 validates and stages the whole
file; only a file with no problem (or with `skip_bad_rows`) is appended in pass 2, one
transaction per batch. The same source id with *different* content is a problem (send a
correction instead), whichever form the log holds it in.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain.ids import service_record_id_hex
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.bulk_import import (
    BulkImporter,
    BulkSpec,
    FastPath,
    ImportResult,
    Progress,
    content_part,
    file_import_ref,
    recorded_tail,
)
from dangliang.importers.fields import Code, IsoDate, Quantity, SourceId, YesNo
from dangliang.importers.formats import SERVICES
from dangliang.importers.readers import open_table
from dangliang.ledger.bulk import BulkWriter, ImportBatches
from dangliang.ledger.compact import SERVICE_RECORD_TOPIC, record_content, service_record_tail
from dangliang.projections.registry import Registry

__all__ = [
    "ImportResult",
    "Progress",
    "ServiceImporter",
    "ServiceRow",
    "check_references",
    "content_part",
    "file_import_ref",
    "recorded_body",
    "recorded_tail",
    "same_record",
    "service_spec",
]


class ServiceRow(TypedDict):
    source_id: SourceId
    institution_code: Code
    staff_id: Code
    item_code: Code
    quantity: Quantity
    service_date: IsoDate
    patient_ref: str | None
    compliant: YesNo | None


ROWS = TypeAdapter(list[ServiceRow])


def service_spec(registry: Registry) -> BulkSpec[ServiceRow]:
    """Service records as a bulk import, checked against `registry` as the log stands."""
    return BulkSpec(
        fmt=SERVICES,
        rows=ROWS,
        check=lambda name, good, today: check_references(name, good, registry, today),
        key_hex=_record_id_hex,
        body=recorded_body,
        created_topic=SERVICE_RECORD_TOPIC,
        key_column="source_id",
        key_zh="来源编号",
        key_en="source id",
        compact=True,
        fast=lambda today: _columns(registry, today),
        same=same_record,
    )


class ServiceImporter(BulkImporter[ServiceRow]):
    """The bulk import of a services file (`bulk_import.BulkImporter` with `service_spec`)."""

    def __init__(
        self,
        registry: Registry,
        writer: BulkWriter,
        *,
        actor: str,
        today: date,
        batches: ImportBatches,
        chunk_size: int = 10_000,
        batch_size: int = 100_000,
    ):
        super().__init__(
            service_spec(registry),
            writer,
            actor=actor,
            today=today,
            chunk_size=chunk_size,
            batch_size=batch_size,
            batches=batches,
        )
        self.registry = registry

    def run(
        self, path: Path, *, skip_bad_rows: bool = False, progress: Progress | None = None
    ) -> ImportResult:
        """Import the file; refused at once, with one problem per missing kind (and the
        file's own header problems), when the reference data the records are checked against
        is not loaded: every row would otherwise be refused three times over (a county's
        year: millions of problems)."""
        missing = [
            (zh, en, command)
            for zh, en, command, loaded in (
                ("机构", "institutions", "institutions load", self.registry.institutions),
                ("人员", "staff", "staff load", self.registry.staff_names),
                ("项目目录", "catalogue items", "catalog load", self.registry.item_categories),
            )
            if not loaded
        ]
        if missing:
            reader = open_table(path, self.spec.fmt)  # the file's own problems (its header) too
            reader.close()
            raise ProblemsFound(
                reader.problems
                + [
                    Problem(
                        str(path),
                        None,
                        None,
                        f"尚未载入{zh}：请先用 dangliang {command} 载入，再导入服务记录",
                        f"no {en} loaded yet: load them first (dangliang {command}), then "
                        "the service records",
                    )
                    for zh, en, command in missing
                ]
            )
        return super().run(path, skip_bad_rows=skip_bad_rows, progress=progress)


def _record_id_hex(r: ServiceRow) -> str:
    return service_record_id_hex(r["institution_code"], r["source_id"])


def check_references(
    name: str, good: list[tuple[int, ServiceRow]], reg: Registry, today: date
) -> tuple[list[tuple[int, ServiceRow]], list[Problem]]:
    """Each valid row against the reference data: institution, item with a value on the
    date, staff posted at that institution that day, no date in the future."""
    ok: list[tuple[int, ServiceRow]] = []
    problems: list[Problem] = []
    for row_number, r in good:
        found: list[Problem] = []
        inst, staff, item, day = (
            r["institution_code"],
            r["staff_id"],
            r["item_code"],
            r["service_date"],
        )
        if inst not in reg.institutions:
            found.append(
                Problem.unknown(
                    name, row_number, "institution_code", "机构编码", "institution code", inst
                )
            )
        if day > today:
            found.append(
                Problem(
                    name,
                    row_number,
                    "service_date",
                    f"服务日期在未来：{day}",
                    f"service date is in the future: {day}",
                )
            )
        if item not in reg.item_categories:
            found.append(
                Problem.unknown(name, row_number, "item_code", "项目编码", "item code", item)
            )
        elif not reg.has_value_on(item, day):
            first = reg.first_value_date(item)
            found.append(
                Problem(
                    name,
                    row_number,
                    "item_code",
                    f"项目 {item} 在 {day} 尚无当量值（最早生效 {first}）",
                    f"item {item} has no equivalent value on {day} (first effective {first})",
                )
            )
        if staff not in reg.staff_names:
            found.append(
                Problem.unknown(name, row_number, "staff_id", "人员编号", "staff id", staff)
            )
        elif inst in reg.institutions:
            at = reg.institution_of(staff, day)
            if at != inst:
                where_zh = f"当时在 {at}" if at else "当时不在任何机构任职"
                where_en = f"was at {at}" if at else "had no posting"
                found.append(
                    Problem(
                        name,
                        row_number,
                        "staff_id",
                        f"人员 {staff} 在 {day} 不在机构 {inst} 任职（{where_zh}）",
                        f"staff {staff} was not at institution {inst} on {day} ({where_en})",
                    )
                )
        if found:
            problems.extend(found)
        else:
            ok.append((row_number, r))
    return ok, problems


def recorded_body(r: ServiceRow, tail: str = "") -> str:
    """The record's state in the compact form (`ledger.compact`), after its batch's number:
    the facts only; the time, actor and import reference are said by the batch's events."""
    compliant = r["compliant"]
    return service_record_tail(
        r["institution_code"],
        r["source_id"],
        r["staff_id"],
        r["item_code"],
        r["quantity"],
        r["service_date"],
        r["patient_ref"],
        compliant is not False,
    )


def same_record(stored: bytes, body: str) -> bool:
    """Whether a stored record, of either stored form, holds the facts of a staged one."""
    return record_content(stored) == body


def _columns(registry: Registry, today: date) -> FastPath:
    """The column-wise checks (`service_columns`, on polars: imported only by an import)."""
    from dangliang.importers.service_columns import ServiceColumns

    return ServiceColumns(registry, today)
