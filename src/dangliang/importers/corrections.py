"""Import corrections and voids (更正与作废) of service records already in the log.

Each row points at a record by institution + source id. `void` takes the record out; `correct`
gives new values for the columns filled in (blank = unchanged). Every row is checked first;
only a file with no problem is applied, all of it in one transaction. A row whose change is
already in the log (the same correction or void sent again) is counted and skipped, so
re-importing the same file changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from eventsourcing.application import AggregateNotFoundError
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain.errors import DomainError
from dangliang.domain.ids import service_record_id
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.domain.service import ServiceRecord
from dangliang.importers.fields import (
    Action,
    Code,
    IsoDate,
    Quantity,
    SourceId,
    Text,
    YesNo,
    validate_chunk,
)
from dangliang.importers.formats import CORRECTIONS
from dangliang.importers.readers import open_table
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.registry import Registry


class CorrectionRow(TypedDict):
    institution_code: Code
    source_id: SourceId
    action: Action
    item_code: Code | None
    quantity: Quantity | None
    staff_id: Code | None
    service_date: IsoDate | None
    compliant: YesNo | None
    reason: Text


@dataclass
class CorrectionsResult:
    file: str
    rows: int
    corrected: int
    voided: int
    already_applied: int

    def summary(self) -> str:
        return (
            f"{self.file}: 共 {self.rows} 行，更正 {self.corrected}，作废 {self.voided}，"
            f"已生效 {self.already_applied} / {self.rows} rows, {self.corrected} corrected, "
            f"{self.voided} voided, {self.already_applied} already applied"
        )


def import_corrections(
    log: EventLog, registry: Registry, path: Path, *, actor: str, today: date
) -> CorrectionsResult:
    reader = open_table(path, CORRECTIONS)
    name = reader.display_name
    numbered = list(reader)
    problems = list(reader.problems)
    good, bad = validate_chunk(TypeAdapter(list[CorrectionRow]), name, numbered)
    problems.extend(bad)
    result = CorrectionsResult(name, len(numbered), 0, 0, 0)
    records: dict[tuple[str, str], tuple[int, ServiceRecord]] = {}
    for row_number, r in good:
        key = (r["institution_code"], r["source_id"])
        if key in records:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "source_id",
                    f"同一记录在文件中出现多次（见第 {records[key][0]} 行）",
                    f"the same record appears more than once (see row {records[key][0]})",
                )
            )
            continue
        try:
            record: ServiceRecord = log.repository.get(service_record_id(*key))
        except AggregateNotFoundError:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "source_id",
                    f"找不到该记录：{key[0]}/{key[1]}",
                    f"no such record: {key[0]}/{key[1]}",
                )
            )
            continue
        records[key] = (row_number, record)
        found = _apply_row(name, row_number, r, record, registry, actor, today, result)
        problems.extend(found)
    if problems:
        raise ProblemsFound(problems)
    changed = [rec for _, rec in records.values() if rec.pending_events]
    if changed:
        log.save(*changed)
    return result


def _apply_row(
    name: str,
    row_number: int,
    r: CorrectionRow,
    record: ServiceRecord,
    registry: Registry,
    actor: str,
    today: date,
    result: CorrectionsResult,
) -> list[Problem]:
    given = {
        k: r[k]
        for k in ("item_code", "quantity", "staff_id", "service_date", "compliant")  # type: ignore[literal-required]
        if r[k] is not None
    }  # type: ignore[literal-required]
    if r["action"] == "void":
        if given:
            return [
                Problem(
                    name,
                    row_number,
                    next(iter(given)),
                    "作废时不应填写更正内容",
                    "a void must leave the correction columns blank",
                )
            ]
        if record.voided:
            result.already_applied += 1
            return []
        record.void(reason=r["reason"], actor=actor)
        result.voided += 1
        return []
    if not given:
        return [
            Problem(
                name,
                row_number,
                "action",
                "更正至少需要填写一个新值",
                "a correction needs at least one new value",
            )
        ]
    if record.voided:
        return [
            Problem(
                name,
                row_number,
                "action",
                "该记录已作废，不能更正",
                "the record is voided and cannot be corrected",
            )
        ]
    item = r["item_code"] or record.item_code
    staff = r["staff_id"] or record.staff_id
    day = r["service_date"] or record.service_date
    problems: list[Problem] = []
    if item not in registry.item_categories:
        problems.append(
            Problem.unknown(name, row_number, "item_code", "项目编码", "item code", item)
        )
    elif not registry.has_value_on(item, day):
        problems.append(
            Problem(
                name,
                row_number,
                "item_code",
                f"项目 {item} 在 {day} 尚无当量值",
                f"item {item} has no equivalent value on {day}",
            )
        )
    if day > today:
        problems.append(
            Problem(
                name,
                row_number,
                "service_date",
                f"服务日期在未来：{day}",
                f"service date is in the future: {day}",
            )
        )
    if registry.institution_of(staff, day) != record.institution_code:
        problems.append(
            Problem(
                name,
                row_number,
                "staff_id",
                f"人员 {staff} 在 {day} 不在机构 {record.institution_code} 任职",
                f"staff {staff} was not at institution {record.institution_code} on {day}",
            )
        )
    if problems:
        return problems
    unchanged = all(getattr(record, k) == v for k, v in given.items())
    if unchanged:
        result.already_applied += 1
        return []
    try:
        record.correct(
            reason=r["reason"],
            actor=actor,
            item_code=r["item_code"],
            quantity=r["quantity"],
            staff_id=r["staff_id"],
            service_date=r["service_date"],
            compliant=r["compliant"],
        )
    except DomainError as e:
        return [Problem(name, row_number, "action", e.message_zh, e.message_en)]
    result.corrected += 1
    return []
