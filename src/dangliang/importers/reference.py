"""Load reference data: institutions, establishment headcount, staff postings, the catalogue.

These files are small (hundreds of rows). Each is validated whole; then every change is applied
to its aggregate in memory, where the domain's own rules may refuse it (a refusal becomes a
Problem with its row); only when nothing was refused are all the new events saved in one
transaction. Loading the same file again records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain import ids
from dangliang.domain.catalogue import CatalogueItem
from dangliang.domain.errors import DomainError
from dangliang.domain.institution import Institution
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.domain.staff import Staff
from dangliang.importers.fields import (
    Category,
    Code,
    Establishment,
    InstitutionKind,
    IsoDate,
    NonNegativeDecimal4,
    Post,
    Text,
    YesNo,
    validate_chunk,
)
from dangliang.importers.formats import CATALOGUE, HEADCOUNT, INSTITUTIONS, STAFF, FileFormat
from dangliang.importers.readers import open_table
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.registry import Registry


@dataclass
class LoadResult:
    file: str
    rows: int
    changed: int
    events: int

    def summary(self) -> str:
        return (
            f"{self.file}: 共 {self.rows} 行，变更 {self.changed} 行，记录事件 {self.events} 条 / "
            f"{self.rows} rows, {self.changed} changed, {self.events} events recorded"
        )


class InstitutionRow(TypedDict):
    code: Code
    name: Text
    kind: InstitutionKind
    parent_code: Code | None
    remote: YesNo | None


class HeadcountRow(TypedDict):
    institution_code: Code
    year: Annotated[int, Field(ge=1949, le=2200)]
    establishment_headcount: Annotated[int, Field(ge=0, le=100_000)]


class StaffRow(TypedDict):
    staff_id: Code
    institution_code: Code
    name: Text
    post: Post
    establishment: Establishment
    from_date: IsoDate
    to_date: IsoDate | None


class CatalogueRow(TypedDict):
    item_code: Code
    name: Text
    category: Category
    unit: Text
    equivalent_value: NonNegativeDecimal4
    effective_from: IsoDate
    reference: Text


R = TypeVar("R")
A = TypeVar("A", bound=Aggregate)


class Session:
    """Aggregates touched by one file, loaded once, saved together."""

    def __init__(self, log: EventLog):
        self.log = log
        self.touched: dict[UUID, Aggregate] = {}
        self._absent: set[UUID] = set()  # looked for in `preload`, not stored

    def preload(self, aggregate_ids: Iterable[UUID]) -> None:
        """Read these aggregates together (`EventLog.aggregates`: a query per thousand, not
        one per row); `get` then answers for them without a query."""
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in self.touched]
        found = self.log.aggregates(wanted)
        self.touched.update(found)
        self._absent.update(i for i in wanted if i not in found)

    def get(self, aggregate_id: UUID) -> Any | None:
        if aggregate_id in self.touched:
            return self.touched[aggregate_id]
        if aggregate_id in self._absent:
            return None
        try:
            found: Aggregate = self.log.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        self.touched[aggregate_id] = found
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.touched[aggregate.id] = aggregate

    def save(self) -> int:
        pending = [a for a in self.touched.values() if a.pending_events]
        count = sum(len(a.pending_events) for a in pending)
        if pending:
            self.log.save(*pending)
        return count


def read(
    path: Path, fmt: FileFormat, adapter: TypeAdapter[list[R]]
) -> tuple[str, list[tuple[int, R]], list[Problem]]:
    reader = open_table(path, fmt)
    rows = list(reader)
    problems = list(reader.problems)
    if problems:
        return reader.display_name, [], problems
    good, bad = validate_chunk(adapter, reader.display_name, rows)
    problems.extend(bad)
    problems.extend(_duplicate_keys(reader.display_name, fmt, good))
    return reader.display_name, good, problems


def _duplicate_keys(name: str, fmt: FileFormat, rows: Iterable[tuple[int, Any]]) -> list[Problem]:
    seen: dict[tuple[Any, ...], int] = {}
    out: list[Problem] = []
    for row_number, r in rows:
        key = tuple(r[k] for k in fmt.key)
        if key in seen:
            out.append(
                Problem(
                    name,
                    row_number,
                    fmt.key[0],
                    f"文件内重复（与第 {seen[key]} 行相同）",
                    f"duplicate within the file (same as row {seen[key]})",
                )
            )
        else:
            seen[key] = row_number
    return out


def apply(
    log: EventLog,
    name: str,
    rows: list[tuple[int, R]],
    problems: list[Problem],
    apply_row: Callable[[Session, R], bool],
    column: str,
    key: Callable[[R], UUID] | None = None,
) -> LoadResult:
    """Apply each row not already refused to the aggregates it touches, saved together;
    `key`, when given, names each row's aggregate, and they are all read at once first."""
    session = Session(log)
    changed = 0
    already = {p.row for p in problems}
    if key is not None:
        session.preload(key(r) for n, r in rows if n not in already)
    for row_number, r in rows:
        if row_number in already:
            continue  # reported once is enough
        try:
            changed += apply_row(session, r)
        except DomainError as e:
            problems.append(Problem(name, row_number, column, e.message_zh, e.message_en))
    if problems:
        raise ProblemsFound(problems)
    return LoadResult(name, len(rows), changed, session.save())


def unknown_institutions(
    name: str, rows: list[tuple[int, Any]], registry: Registry
) -> list[Problem]:
    return [
        Problem.unknown(
            name, n, "institution_code", "机构编码", "institution code", r["institution_code"]
        )
        for n, r in rows
        if r["institution_code"] not in registry.institutions
    ]


def load_institutions(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    name, rows, problems = read(path, INSTITUTIONS, TypeAdapter(list[InstitutionRow]))
    kinds = {code: kind for code, (kind, _) in registry.institutions.items()}
    kinds.update({r["code"]: r["kind"] for _, r in rows})
    for row_number, r in rows:
        parent = r["parent_code"]
        if parent and parent not in kinds:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "parent_code",
                    f"未知上级机构：{parent!r}",
                    f"unknown parent institution {parent!r}",
                )
            )
        elif parent and kinds[parent] == "village_clinic":
            problems.append(
                Problem(
                    name,
                    row_number,
                    "parent_code",
                    "上级机构不能是村卫生室",
                    "a parent cannot be a village clinic",
                )
            )

    def apply_row(session: Session, r: InstitutionRow) -> bool:
        details = dict(
            name=r["name"],
            kind=r["kind"],
            parent_code=r["parent_code"],
            remote=bool(r["remote"]),
            actor=actor,
        )
        existing: Institution | None = session.get(ids.institution_id(r["code"]))
        if existing is None:
            session.add(Institution.register(code=r["code"], **details))  # type: ignore[arg-type]
            return True
        return existing.describe(**details)  # type: ignore[arg-type]

    return apply(
        log, name, rows, problems, apply_row, "kind", key=lambda r: ids.institution_id(r["code"])
    )


def load_headcount(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    name, rows, problems = read(path, HEADCOUNT, TypeAdapter(list[HeadcountRow]))
    problems.extend(unknown_institutions(name, rows, registry))

    def apply_row(session: Session, r: HeadcountRow) -> bool:
        inst: Institution | None = session.get(ids.institution_id(r["institution_code"]))
        assert inst is not None
        return inst.set_headcount(
            year=r["year"], headcount=r["establishment_headcount"], actor=actor
        )

    return apply(
        log,
        name,
        rows,
        problems,
        apply_row,
        "establishment_headcount",
        key=lambda r: ids.institution_id(r["institution_code"]),
    )


def load_staff(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    name, rows, problems = read(path, STAFF, TypeAdapter(list[StaffRow]))
    problems.extend(unknown_institutions(name, rows, registry))
    for row_number, r in rows:
        if r["to_date"] is not None and r["to_date"] < r["from_date"]:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "to_date",
                    "截止日期早于起始日期",
                    "to_date is before from_date",
                )
            )

    def apply_row(session: Session, r: StaffRow) -> bool:
        person: Staff | None = session.get(ids.staff_id(r["staff_id"]))
        changed = False
        if person is None:
            person = Staff.register(staff_id=r["staff_id"], name=r["name"], actor=actor)
            session.add(person)
            changed = True
        else:
            changed = person.rename(name=r["name"], actor=actor)
        posted = person.post_to(
            institution_code=r["institution_code"],
            post=r["post"],
            establishment=r["establishment"],
            from_date=r["from_date"],
            to_date=r["to_date"],
            actor=actor,
        )
        return changed or posted

    return apply(
        log, name, rows, problems, apply_row, "from_date", key=lambda r: ids.staff_id(r["staff_id"])
    )


def load_catalogue(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    name, rows, problems = read(path, CATALOGUE, TypeAdapter(list[CatalogueRow]))
    described: dict[str, tuple[int, tuple[str, str, str]]] = {}
    for row_number, r in rows:
        if r["effective_from"].day != 1:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "effective_from",
                    f"生效日期必须是某月 1 日：{r['effective_from']}",
                    f"effective date must be the 1st of a month: {r['effective_from']}",
                )
            )
        details = (r["name"], r["category"], r["unit"])
        first = described.setdefault(r["item_code"], (row_number, details))
        if first[1] != details:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "name",
                    f"同一项目的名称、类别或单位与第 {first[0]} 行不一致",
                    f"name, category or unit differ from row {first[0]} for the same item",
                )
            )

    def apply_row(session: Session, r: CatalogueRow) -> bool:
        item: CatalogueItem | None = session.get(ids.catalogue_item_id(r["item_code"]))
        changed = False
        if item is None:
            item = CatalogueItem.define(
                item_code=r["item_code"],
                name=r["name"],
                category=r["category"],
                unit=r["unit"],
                actor=actor,
            )
            session.add(item)
            changed = True
        else:
            changed = item.describe(
                name=r["name"], category=r["category"], unit=r["unit"], actor=actor
            )
        value_changed = item.set_value(
            value=Decimal(r["equivalent_value"]),
            effective_from=r["effective_from"],
            reference=r["reference"],
            actor=actor,
        )
        return changed or value_changed

    return apply(
        log,
        name,
        rows,
        problems,
        apply_row,
        "equivalent_value",
        key=lambda r: ids.catalogue_item_id(r["item_code"]),
    )


__all__ = [
    "LoadResult",
    "date",
    "load_catalogue",
    "load_headcount",
    "load_institutions",
    "load_staff",
]
