"""Corrections and voids (更正与作废) of claims (结算记录更正) and enrolment (参保登记更正) already
in the log, through their aggregates (`Claim.correct/void`, `Enrolment.correct/void`).

Each row points at one record by its key; `void` takes it out, `correct` gives its new values
for the columns filled in (blank keeps the current value) and the aggregate records the full
new values with the reason. All or nothing per file: every row is checked first (unknown
record, voided record, a correction that changes nothing…) and every problem reported; only a
file with none is saved, in one transaction. Only the records the file names are loaded, one
at a time, never the whole log. A row this very file already applied (the same file imported
again: its events carry the file's digest) is counted and skipped, so a re-import changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import project_aggregate
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain import ids
from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.errors import DomainError
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.bulk_import import file_import_ref
from dangliang.importers.bulk_insurance import (
    EnrolmentRow,
    enrolment_problems,
    in_future,
    unknown_community,
)
from dangliang.importers.fields import Action, Code, IsoDate, Text, YesNo
from dangliang.importers.formats import CLAIM_CORRECTIONS, ENROLMENT_CORRECTIONS, FileFormat
from dangliang.importers.fund_fields import Fen, InsuranceType, MonthText, Reference
from dangliang.importers.insurance_loaders import InsuranceResult
from dangliang.importers.reference import read
from dangliang.ledger.eventlog import EventLog

R = TypeVar("R")


class ClaimCorrectionRow(TypedDict):
    claim_id: Reference
    action: Action
    community_code: Code | None
    institution_code: Reference | None
    out_of_area: YesNo | None
    settled_on: IsoDate | None
    fund_amount: Fen | None
    reason: Text


class EnrolmentCorrectionRow(TypedDict):
    insured_ref: Reference
    from_month: MonthText
    action: Action
    insurance_type: InsuranceType | None
    birth_date: IsoDate | None
    home: Text | None
    community_code: Code | None
    to_month: MonthText | None
    reason: Text


CLAIM_VALUES = ("community_code", "institution_code", "out_of_area", "settled_on", "fund_amount")
ENROLMENT_VALUES = ("insurance_type", "birth_date", "home", "community_code", "to_month")


@dataclass(frozen=True)
class Revision:
    """What one kind of corrections file needs: its format and row model, the record a row
    names, and how a `correct` row's new values are checked and applied."""

    fmt: FileFormat
    adapter: TypeAdapter[Any]
    value_columns: tuple[str, ...]
    record_id: Callable[[Any], UUID]
    label: Callable[[Any], tuple[str, str]]  # the record, for messages: (zh, en)
    correct: Callable[[str, int, Any, Any, dict[str, Any]], list[Problem]]


def revise(log: EventLog, revision: Revision, path: Path, *, actor: str) -> InsuranceResult:
    path = Path(path)
    import_ref = file_import_ref(path)
    name, rows, problems = read(path, revision.fmt, revision.adapter)
    refused = {p.row for p in problems}
    key = revision.fmt.key[0]
    counts = {"corrected": 0, "voided": 0}
    already = 0
    changed: list[Any] = []
    for row_number, r in rows:
        if row_number in refused:
            continue
        events = list(log.events.get(revision.record_id(r)))
        label_zh, label_en = revision.label(r)
        if not events:
            problems.append(
                Problem(name, row_number, key, f"找不到{label_zh}", f"no such {label_en}")
            )
            continue
        if any(getattr(e, "import_ref", None) == import_ref for e in events[1:]):
            already += 1  # this file was imported before: its change is in the log
            continue
        record: Any = project_aggregate(None, events)
        given = {c: r[c] for c in revision.value_columns if r[c] is not None}
        found = _check_row(name, row_number, r, record, given, label_zh, label_en)
        current = dict(zip(revision.value_columns, record.values, strict=True))
        if not found and given and all(current[c] == v for c, v in given.items()):
            found = [
                Problem(
                    name,
                    row_number,
                    "action",
                    f"更正内容与{label_zh}现有内容相同",
                    f"nothing changes: the {label_en} already has these values",
                )
            ]
        if not found:
            try:
                if r["action"] == "void":
                    record.void(reason=r["reason"], actor=actor, import_ref=import_ref)
                else:
                    found = revision.correct(name, row_number, r, record, given)
                    if not found:
                        record_correction(record, r, given, actor, import_ref)
            except DomainError as e:
                found = [Problem(name, row_number, "action", e.message_zh, e.message_en)]
        if found:
            problems.extend(found)
            continue
        counts["voided" if r["action"] == "void" else "corrected"] += 1
        changed.append(record)
    if problems:
        raise ProblemsFound(problems)
    if changed:
        log.save(*changed)
    return InsuranceResult(
        file=name,
        import_ref=import_ref,
        rows=len(rows),
        inserted=len(changed),
        already_present=already,
        counts=counts,
    )


def _check_row(
    name: str,
    row_number: int,
    r: Any,
    record: Any,
    given: dict[str, Any],
    label_zh: str,
    label_en: str,
) -> list[Problem]:
    if r["action"] == "void" and given:
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
        return [
            Problem(
                name,
                row_number,
                "action",
                f"{label_zh}已作废，不能再更正或作废",
                f"the {label_en} is voided; it can be neither corrected nor voided again",
            )
        ]
    if r["action"] == "correct" and not given:
        return [
            Problem(
                name,
                row_number,
                "action",
                "更正至少需要填写一个新值",
                "a correction needs at least one new value",
            )
        ]
    return []


def record_correction(
    record: Any, r: Any, given: dict[str, Any], actor: str, import_ref: str
) -> None:
    """The record's full new values: what the row gives, the current value elsewhere."""
    if isinstance(record, Claim):
        community, institution, out_of_area, settled_on, fen = (
            given.get(c, v) for c, v in zip(CLAIM_VALUES, record.values, strict=True)
        )
        record.correct(
            community_code=community,
            institution_code=institution,
            out_of_area=out_of_area,
            settled_on=settled_on,
            fund_fen=fen,
            reason=r["reason"],
            actor=actor,
            import_ref=import_ref,
        )
        return
    values = dict(zip(ENROLMENT_VALUES, record.values, strict=True)) | given
    record.correct(**values, reason=r["reason"], actor=actor, import_ref=import_ref)


# ---- claims -----------------------------------------------------------------------------


def claim_revision(communities: Collection[str], today: date) -> Revision:
    def correct(
        name: str, row_number: int, r: ClaimCorrectionRow, record: Claim, given: dict[str, Any]
    ) -> list[Problem]:
        found: list[Problem] = []
        code = given.get("community_code")
        if code is not None and code not in communities:
            found.append(unknown_community(name, row_number, code))
        day = given.get("settled_on")
        if day is not None and day > today:
            found.append(
                in_future(name, row_number, "settled_on", "结算日期", "settlement date", day)
            )
        return found

    return Revision(
        fmt=CLAIM_CORRECTIONS,
        adapter=TypeAdapter(list[ClaimCorrectionRow]),
        value_columns=CLAIM_VALUES,
        record_id=lambda r: ids.claim_id(r["claim_id"]),
        label=lambda r: (f"结算记录 {r['claim_id']}", f"claim {r['claim_id']}"),
        correct=correct,
    )


# ---- enrolment --------------------------------------------------------------------------


def enrolment_revision(communities: Collection[str], today: date) -> Revision:
    def correct(
        name: str,
        row_number: int,
        r: EnrolmentCorrectionRow,
        record: Enrolment,
        given: dict[str, Any],
    ) -> list[Problem]:
        values = dict(zip(ENROLMENT_VALUES, record.values, strict=True)) | given
        new: EnrolmentRow = {
            "insured_ref": r["insured_ref"],
            "from_month": r["from_month"],
            **values,  # type: ignore[typeddict-item]
        }
        return enrolment_problems(name, row_number, new, communities, today, given)

    return Revision(
        fmt=ENROLMENT_CORRECTIONS,
        adapter=TypeAdapter(list[EnrolmentCorrectionRow]),
        value_columns=ENROLMENT_VALUES,
        record_id=lambda r: ids.enrolment_id(r["insured_ref"], r["from_month"]),
        label=lambda r: (
            f"参保登记 {r['insured_ref']}/{r['from_month']}",
            f"enrolment {r['insured_ref']}/{r['from_month']}",
        ),
        correct=correct,
    )


def import_claim_corrections(
    log: EventLog, communities: Collection[str], path: Path, *, actor: str, today: date
) -> InsuranceResult:
    """结算记录更正: corrections and voids of claims already imported."""
    return revise(log, claim_revision(communities, today), path, actor=actor)


def import_enrolment_corrections(
    log: EventLog, communities: Collection[str], path: Path, *, actor: str, today: date
) -> InsuranceResult:
    """参保登记更正: corrections (e.g. setting `to_month` to end it) and voids of enrolment."""
    return revise(log, enrolment_revision(communities, today), path, actor=actor)
