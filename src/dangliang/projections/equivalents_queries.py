"""Queries on the workload equivalents cube (工作当量), now or as the log stood at a position.

`cells` gives the summed quantities of the cube's cells with the equivalent value in force
each month (`ValueBook`); `equivalents` sums them per institution (by staff or item);
`records_in` lists the service records behind them (记录明细), `records_page` one page of
them with the totals of all; `position_at` turns an as-of moment into a log position. Cells
hold quantities; equivalents are `quantity × value`, multiplied when read (see
`equivalents`).
"""

from __future__ import annotations

import bisect
import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from eventsourcing.persistence import Notification
from sqlalchemy import Connection, func, select, text

from dangliang.domain.periods import Period
from dangliang.ledger.eventlog import EventLog
from dangliang.projections import registry as reg
from dangliang.projections.equivalents import EquivalentsTables
from dangliang.projections.tracking import position as base_position

EU_QUANTUM = Decimal("0.0001")


class ValueBook:
    """Equivalent values by item and month, as the log stood at a position (当量值表)."""

    def __init__(self, conn: Connection, position: int | None = None):
        v = reg.item_values
        query = select(v.c.item_code, v.c.effective_from, v.c.value_e4, v.c.notification_id)
        if position is not None:
            query = query.where(v.c.notification_id <= position)
        latest: dict[tuple[str, date], tuple[int, int]] = {}
        for item, start, value, nid in conn.execute(query.order_by(v.c.notification_id)):
            latest[(item, start)] = (value, nid)  # a later value for the same month wins
        self._starts: dict[str, list[date]] = defaultdict(list)
        self._values: dict[str, list[int]] = defaultdict(list)
        for (item, start), (value, _) in sorted(latest.items()):
            self._starts[item].append(start)
            self._values[item].append(value)
        self._memo: dict[tuple[str, str], int] = {}
        self.categories: dict[str, str] = {
            code: category
            for code, category in conn.execute(select(reg.items.c.item_code, reg.items.c.category))
        }

    def value_e4(self, item: str, month: str) -> int:
        """Value × 10^4 in force on the 1st of `month` (0 if none yet: nothing is bought)."""
        found = self._memo.get((item, month))
        if found is None:
            first = date(int(month[:4]), int(month[5:7]), 1)
            i = bisect.bisect_right(self._starts.get(item, []), first)
            found = self._memo[(item, month)] = self._values[item][i - 1] if i else 0
        return found


@dataclass
class Totals:
    """Equivalents of one institution (or one staff member / item within it), × 10^8."""

    basic_medical: int = 0
    basic_public_health: int = 0
    non_compliant_public_health: int = 0
    records: int = 0

    def add(
        self, category: str, compliant: bool, quantity_e4: int, value_e4: int, records: int
    ) -> None:
        eq = quantity_e4 * value_e4
        if category == "basic_medical":
            self.basic_medical += eq
        elif compliant:
            self.basic_public_health += eq
        else:
            self.non_compliant_public_health += eq
        self.records += records

    def as_json(self) -> dict[str, Any]:
        return {
            "basic_medical": str(eu(self.basic_medical)),
            "basic_public_health": str(eu(self.basic_public_health)),
            "non_compliant_public_health": str(eu(self.non_compliant_public_health)),
            "records": self.records,
        }


def eu(scaled_e8: int) -> Decimal:
    """Equivalents from their exact × 10^8 form, at 4 places (ROUND_HALF_UP)."""
    return (Decimal(scaled_e8) / Decimal(10**8)).quantize(EU_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Cell:
    """Summed quantity of one institution × item × month × compliant (× staff) cell, with the
    item's category and the equivalent value in force that month (both × 10^4)."""

    institution: str
    item: str
    month: str
    compliant: bool
    staff: str | None
    quantity_e4: int
    records: int
    category: str
    value_e4: int

    @property
    def equivalents_e8(self) -> int:
        return self.quantity_e4 * self.value_e4


def cells(
    conn: Connection,
    t: EquivalentsTables,
    months: Iterable[str],
    *,
    position: int | None = None,
    institution: str | None = None,
    by_staff: bool = False,
    staff: str | None = None,
) -> Iterator[Cell]:
    """The non-empty cells of these months, now (from the cube) or as the log stood at
    `position`, valued with the equivalent values known then (`staff`: one person's only,
    by staff).

    At a position P the answer is the cube (standing at C ≥ P) minus the deltas recorded
    after P: right after a catch-up (the common case) there are none, and an audit replay of
    an older position reads only what came since. The cube's position is read before and
    after the cube itself; positions only move forward, so equal readings mean the cube read
    saw exactly C (PostgreSQL gives each statement its own snapshot). Otherwise, or if the
    cube is behind P, the deltas up to P are summed."""
    by_staff = by_staff or staff is not None
    read = functools.partial(_cell_rows, conn, t, list(months), institution, by_staff, staff)
    if position is None:
        rows = read()
    else:
        before = base_position(conn, t.tracking_name)
        rows = read()
        at = base_position(conn, t.tracking_name)
        if at != before or at < position:
            rows = read(upto=position)
        elif at > position:
            later = read(after=position, upto=at)
            if later:  # events since that changed no cell (inputs, prices) cost nothing
                rows = _subtract(rows, later)
    book = ValueBook(conn, position)
    for row in rows:
        quantity, records = int(row[-2]), int(row[-1])
        if quantity == 0 and records == 0:
            continue
        item, month = row[1], row[2]
        yield Cell(
            institution=row[0],
            item=item,
            month=month,
            compliant=bool(row[3]),
            staff=row[4] if by_staff else None,
            quantity_e4=quantity,
            records=records,
            category=book.categories.get(item, "basic_medical"),
            value_e4=book.value_e4(item, month),
        )


def _subtract(rows: list[Any], later: list[Any]) -> list[tuple[Any, ...]]:
    """Cells minus the deltas recorded later (same key columns, then quantity and records)."""
    sums: dict[tuple[Any, ...], list[int]] = {tuple(r[:-2]): [int(r[-2]), int(r[-1])] for r in rows}
    for r in later:
        cell = sums.setdefault(tuple(r[:-2]), [0, 0])
        cell[0] -= int(r[-2])
        cell[1] -= int(r[-1])
    return [(*key, q, n) for key, (q, n) in sums.items()]


def _cell_rows(
    conn: Connection,
    t: EquivalentsTables,
    months: list[str],
    institution: str | None,
    by_staff: bool,
    staff: str | None = None,
    *,
    after: int | None = None,
    upto: int | None = None,
) -> list[Any]:
    """Summed cells: the cube, or the deltas with `after` < notification id ≤ `upto`."""
    source = t.cube if upto is None else t.deltas
    columns = [source.c.institution_code, source.c.item_code, source.c.month, source.c.compliant]
    if by_staff:
        columns.append(source.c.staff_id)
    query = select(*columns, func.sum(source.c.quantity_e4), func.sum(source.c.records)).where(
        source.c.month.in_(months)
    )
    if upto is not None:
        query = query.where(source.c.notification_id <= upto)
    if after is not None:
        query = query.where(source.c.notification_id > after)
    if institution:
        query = query.where(source.c.institution_code == institution)
    if staff is not None:
        query = query.where(source.c.staff_id == staff)
    return list(conn.execute(query.group_by(*columns)).all())


def equivalents(
    conn: Connection,
    t: EquivalentsTables,
    period: str,
    *,
    position: int | None = None,
    institution: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Equivalents per institution for a month or year, now (from the cube) or as the log
    stood at `position` (from the deltas), optionally broken down by staff or item."""
    per_institution: dict[str, Totals] = defaultdict(Totals)
    per_detail: dict[str, dict[str, Totals]] = defaultdict(lambda: defaultdict(Totals))
    for cell in cells(
        conn,
        t,
        Period.of(period).month_labels,
        position=position,
        institution=institution,
        by_staff=by == "staff",
    ):
        parts = (cell.category, cell.compliant, cell.quantity_e4, cell.value_e4, cell.records)
        per_institution[cell.institution].add(*parts)
        if by == "staff":
            per_detail[cell.institution][cell.staff or ""].add(*parts)
        elif by == "item":
            per_detail[cell.institution][cell.item].add(*parts)
    out: list[dict[str, Any]] = []
    for code in sorted(per_institution):
        entry = {"code": code, **per_institution[code].as_json()}
        if by:
            entry[by] = [{"code": k, **v.as_json()} for k, v in sorted(per_detail[code].items())]
        out.append(entry)
    return {"period": period, "position": position, "institutions": out}


def months_held(conn: Connection, t: EquivalentsTables) -> tuple[str | None, str | None]:
    """The first and the last month with service records (`2023-01`, `2024-12`), or Nones:
    one index look-up each (min and max asked apart, so each uses the month index)."""
    first = conn.scalar(select(func.min(t.deltas.c.month)))
    last = conn.scalar(select(func.max(t.deltas.c.month)))
    return first, last


def position_at(log: EventLog, moment: datetime) -> int:
    """The log position at a moment (transaction time): the last notification recorded at
    or before it, found by bisection over the log's own timestamps (about 20 reads)."""
    bound = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    lo, hi = 0, log.head()
    while lo < hi:
        mid = (lo + hi + 1) // 2
        found = log.app_recorder.select_notifications(start=mid, limit=1, stop=hi)
        if not found:  # no notification in [mid, hi] (ids can have gaps on PostgreSQL)
            hi = mid - 1
        elif recorded_at(log, found[0]) <= bound:
            lo = found[0].id
        else:
            hi = mid - 1
    return lo


def recorded_at(log: EventLog, notification: Notification) -> datetime:
    """When a notification was recorded (its event's timestamp: transaction time)."""
    stamp: datetime = log.mapper.to_domain_event(notification).timestamp  # type: ignore[attr-defined]
    return stamp


def records_in(
    conn: Connection,
    t: EquivalentsTables,
    events_table: str,
    institution: str,
    months: Iterable[str],
    *,
    item: str | None = None,
    position: int | None = None,
) -> list[dict[str, Any]]:
    """The service records behind an institution's equivalents (记录明细): one row per record
    and cell it counts in, as the log stood at `position`, with its source id, so an auditor
    can go from any number back to the HIS records. Voided records are not listed; a record
    corrected into another cell is listed there."""
    d = t.deltas
    dialect = conn.dialect.name
    event_id = "notification_id" if dialect == "postgresql" else "rowid"
    wanted = list(months)
    where = [
        "d.institution_code = :institution",
        "d.month IN (" + ", ".join(f":m{i}" for i in range(len(wanted))) + ")",
    ]
    params: dict[str, Any] = {"institution": institution}
    params.update({f"m{i}": m for i, m in enumerate(wanted)})
    if item:
        where.append("d.item_code = :item")
        params["item"] = item
    if position is not None:
        where.append("d.notification_id <= :position")
        params["position"] = position
    query = _records_query(d.name, events_table, event_id, " AND ".join(where))
    cells_of = [tuple(r) for r in conn.execute(text(query), params)]
    source_ids = _source_ids(conn, events_table, [str(r[0]) for r in cells_of])
    out = [_record(source_ids, *row) for row in cells_of]
    out.sort(key=lambda r: (r["month"], r["item"], r["source_id"]))
    return out


def _records_query(deltas: str, events_table: str, event_id: str, where: str) -> str:
    """The records (record, item, month, staff, compliant, quantity) still counted in the
    cells `where` selects: each record's deltas summed, those corrected out or voided gone."""
    return (
        "SELECT e.originator_id, d.item_code, d.month, d.staff_id, d.compliant, "
        "SUM(d.quantity_e4) "
        f"FROM {deltas} d JOIN {events_table} e ON e.{event_id} = d.notification_id "
        f"WHERE {where} "
        "GROUP BY e.originator_id, d.item_code, d.month, d.staff_id, d.compliant "
        "HAVING SUM(d.records) > 0 "
    )


def _record(
    source_ids: dict[str, str],
    originator: Any,
    item: str,
    month: str,
    staff: str,
    compliant: Any,
    quantity_e4: Any,
) -> dict[str, Any]:
    return {
        "source_id": source_ids.get(str(originator), ""),
        "item": item,
        "month": month,
        "staff_id": staff,
        "compliant": bool(compliant),
        "quantity": str(Decimal(int(quantity_e4)).scaleb(-4)),
    }


@dataclass(frozen=True)
class RecordsPage:
    """One page of `records_in`'s rows, with the totals of every row (not only the page's):
    how many, their quantity and their equivalents (× 10^4 and × 10^8, exact)."""

    count: int
    quantity_e4: int
    equivalents_e8: int
    rows: list[dict[str, Any]]  # as records_in's, with the item's value that month (value_e4)


def records_page(
    conn: Connection,
    t: EquivalentsTables,
    events_table: str,
    institution: str,
    months: Iterable[str],
    *,
    item: str | None = None,
    position: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> RecordsPage:
    """`records_in`'s rows `offset` to `offset + limit`, ordered by month, item and then the
    order the records were imported in (the first event that put each into its cell), and
    their totals, without listing them all: source ids are looked up for the page only.

    The totals are the cube's cells (as at `position`): a record counts once in the cell it
    is in (+1 when recorded or corrected in, −1 with its quantity when corrected out or
    voided), so a cell's record count is the number of records listed in it and its quantity
    their quantities' sum. The same counts per month and item say which cells a page falls
    in, and only those months' rows are read."""
    blocks: dict[tuple[str, str], list[int]] = {}  # (month, item) → records, quantity, value
    for cell in cells(conn, t, months, position=position, institution=institution):
        if item is not None and cell.item != item:
            continue
        block = blocks.setdefault((cell.month, cell.item), [0, 0, cell.value_e4])
        block[0] += cell.records
        block[1] += cell.quantity_e4
    count = sum(b[0] for b in blocks.values())
    quantity = sum(b[1] for b in blocks.values())
    equivalents = sum(b[1] * b[2] for b in blocks.values())
    wanted: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)  # month → item → slice
    start = 0
    for key in sorted(blocks):
        size = blocks[key][0]
        skip, stop = max(offset - start, 0), min(offset + limit - start, size)
        if stop > skip:
            wanted[key[0]][key[1]] = (skip, stop)
        start += size
    found: list[tuple[Any, ...]] = []
    for month, items in sorted(wanted.items()):
        only = next(iter(items.values())) if len(items) == 1 else None
        rows = _record_rows(conn, t, events_table, institution, month, list(items), position, only)
        by_item: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for r in rows:
            by_item[r[1]].append(r)
        for item_code, (skip, stop) in sorted(items.items()):
            found += by_item[item_code] if only else by_item[item_code][skip:stop]
    source_ids = _source_ids(conn, events_table, [str(r[0]) for r in found])
    return RecordsPage(
        count=count,
        quantity_e4=quantity,
        equivalents_e8=equivalents,
        rows=[
            {**_record(source_ids, *row), "value_e4": blocks[(row[2], row[1])][2]} for row in found
        ],
    )


def _record_rows(
    conn: Connection,
    t: EquivalentsTables,
    events_table: str,
    institution: str,
    month: str,
    items: list[str],
    position: int | None,
    only: tuple[int, int] | None,
) -> list[tuple[Any, ...]]:
    """The listed records (record, item, month, staff, compliant, quantity) of some items in
    one month, in import order per item; `only`: the slice of a single item's, in SQL."""
    event_id = "notification_id" if conn.dialect.name == "postgresql" else "rowid"
    params: dict[str, Any] = {"institution": institution, "month": month}
    params.update({f"i{n}": code for n, code in enumerate(items)})
    names = ", ".join(f":i{n}" for n in range(len(items)))
    bound = ""
    if position is not None:
        bound = "AND d.notification_id <= :position "
        params["position"] = position
    page = ""
    if only is not None:
        page = "LIMIT :take OFFSET :skip"
        params.update(take=only[1] - only[0], skip=only[0])
    where = (
        f"d.month = :month AND d.institution_code = :institution "
        f"AND d.item_code IN ({names}) {bound}"
    )
    query = _records_query(t.deltas.name, events_table, event_id, where) + (
        f"ORDER BY d.item_code, MIN(d.notification_id), e.originator_id {page}"
    )
    return [tuple(r) for r in conn.execute(text(query), params)]


def _source_ids(conn: Connection, events_table: str, originators: list[str]) -> dict[str, str]:
    """Each record's source id, from its first (Recorded) event."""
    found: dict[str, str] = {}
    uuid = conn.dialect.name == "postgresql"
    for start in range(0, len(originators), 500):
        chunk = originators[start : start + 500]
        names = ", ".join(f"CAST(:o{i} AS uuid)" if uuid else f":o{i}" for i in range(len(chunk)))
        rows = conn.execute(
            text(
                f"SELECT originator_id, state FROM {events_table} "
                f"WHERE originator_version = 1 AND originator_id IN ({names})"
            ),
            {f"o{i}": o for i, o in enumerate(chunk)},
        )
        for originator, state in rows:
            body = json.loads(state if isinstance(state, str) else bytes(state).decode("utf-8"))
            # The compact form is an array (ledger.compact: the source id is its third value)
            found[str(originator)] = body[2] if isinstance(body, list) else body["source_id"]
    return found
