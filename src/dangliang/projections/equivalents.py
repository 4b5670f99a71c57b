"""Workload equivalents (工作当量): the cube every payment is computed from.

Two tables, both kept from the log by one catch-up projection:

- `eq_deltas`: one row per change to a cell — a recorded service adds its quantity to its
  cell; a correction moves it out of the old cell into the new one; a void takes it out. Each
  row keeps the notification id of the event, so "the log as it stood at position N" is
  `WHERE notification_id <= N` — as-of queries need no replay.
- `eq_cube`: the current sums by institution × staff × item × month × compliant.

An as-of moment (transaction time) becomes a log position by bisecting the log's own event
timestamps.

Cells hold *quantities* (scaled by 10^4, exact integers on both backends), never equivalents.
Equivalents are `quantity × the item's value effective that month`, multiplied when read, so a
value change — retroactive too — re-prices from stored quantities in O(cube), with no event
replay and nothing to update (DOMAIN.md §4 step 1).

Recorded events are read straight from the library's JSON in SQL (`json_extract` on SQLite,
`jsonb` on PostgreSQL), so a rebuild never runs Python per record; the rare corrections and
voids go through the library's mapper. This needs the log stored without cipher or
compression, which `bootstrap` checks.
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
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dangliang.domain.service import ServiceRecord
from dangliang.domain.values import month_of
from dangliang.ledger.eventlog import EventLog
from dangliang.projections import registry as reg
from dangliang.projections.tracking import forget_tracking, notifications_in, topic_of
from dangliang.projections.tracking import position as base_position

SCALE = 10_000  # quantities and values are stored × 10^4
EU_QUANTUM = Decimal("0.0001")
CATEGORIES = ("basic_medical", "basic_public_health")

RECORDED = topic_of(ServiceRecord.Recorded)
CHANGES = (topic_of(ServiceRecord.Corrected), topic_of(ServiceRecord.Voided))

versions_metadata = MetaData()
projection_versions = Table(
    "projection_versions",
    versions_metadata,
    Column("name", String(64), primary_key=True),
    Column("active", String(16), nullable=False),
)

_DIMENSIONS = ("institution_code", "staff_id", "item_code", "month", "compliant")


@dataclass(frozen=True)
class EquivalentsTables:
    metadata: MetaData
    deltas: Table
    cube: Table
    tracking_name: str  # the projection's name in the tracking table


def tables(suffix: str) -> EquivalentsTables:
    md = MetaData()
    seq_type = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: the rowid itself
    deltas = Table(
        f"eq_deltas_{suffix}",
        md,
        Column("seq", seq_type, primary_key=True, autoincrement=True),
        Column("notification_id", BigInteger, nullable=False),
        Column("institution_code", String(64), nullable=False),
        Column("staff_id", String(64), nullable=False),
        Column("item_code", String(64), nullable=False),
        Column("month", String(7), nullable=False),
        Column("compliant", Boolean, nullable=False),
        Column("quantity_e4", BigInteger, nullable=False),
        Column("records", Integer, nullable=False),
    )
    cube = Table(
        f"eq_cube_{suffix}",
        md,
        Column("institution_code", String(64), primary_key=True),
        Column("month", String(7), primary_key=True),
        Column("item_code", String(64), primary_key=True),
        Column("staff_id", String(64), primary_key=True),
        Column("compliant", Boolean, primary_key=True),
        Column("quantity_e4", BigInteger, nullable=False),
        Column("records", Integer, nullable=False),
    )
    return EquivalentsTables(md, deltas, cube, f"equivalents_{suffix}")


class EquivalentsProjection:
    batch_size = 250_000  # notification ids per transaction (rows + tracking together)

    def __init__(self, suffix: str = "a"):
        self.suffix = suffix
        self.name = f"equivalents_{suffix}"
        self.t = tables(suffix)

    def create(self, engine: Engine, *, indexes: bool = True) -> None:
        """Create the tables; a rebuild asks for the index afterwards (`add_indexes`): one
        sort at the end is cheaper than keeping it up to date row by row."""
        self.t.metadata.create_all(engine)
        if indexes:
            self.add_indexes(engine)

    def add_indexes(self, engine: Engine) -> None:
        deltas = self.t.deltas.name
        with engine.begin() as conn:  # as-of queries: one month up to a position
            index = f"CREATE INDEX IF NOT EXISTS {deltas}_month ON {deltas} "
            conn.execute(text(index + "(month, notification_id)"))

    def drop(self, engine: Engine) -> None:
        self.t.metadata.drop_all(engine)
        with engine.begin() as conn:
            forget_tracking(conn, self.name)

    def process(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        dialect = conn.dialect.name
        before = int(conn.scalar(select(func.max(self.t.deltas.c.seq))) or 0)
        params = {"start": start, "stop": stop, "topic": RECORDED}
        conn.execute(text(_recorded_sql(dialect, self.t.deltas.name, log.events_table)), params)
        self._apply_changes(conn, log, start, stop)
        self._merge_into_cube(conn, dialect, before)

    def _apply_changes(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        rows: list[dict[str, Any]] = []
        for n in notifications_in(log, start, stop, CHANGES):
            old = _state_before(log, n.originator_id, n.originator_version)
            rows.append(
                {**old, "notification_id": n.id, "quantity_e4": -old["quantity_e4"], "records": -1}
            )
            event = log.mapper.to_domain_event(n)
            if isinstance(event, ServiceRecord.Corrected):
                rows.append(
                    {
                        "notification_id": n.id,
                        "institution_code": old["institution_code"],
                        "staff_id": event.staff_id,
                        "item_code": event.item_code,
                        "month": month_of(event.service_date),
                        "compliant": event.compliant,
                        "quantity_e4": _e4(event.quantity),
                        "records": 1,
                    }
                )
        if rows:
            conn.execute(insert(self.t.deltas), rows)

    def _merge_into_cube(self, conn: Connection, dialect: str, after_seq: int) -> None:
        d, c = self.t.deltas, self.t.cube
        grouped = (
            select(*(d.c[k] for k in _DIMENSIONS), func.sum(d.c.quantity_e4), func.sum(d.c.records))
            .where(d.c.seq > after_seq)
            .group_by(*(d.c[k] for k in _DIMENSIONS))
        )
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = make(c).from_select([*_DIMENSIONS, "quantity_e4", "records"], grouped)
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.c[k] for k in _DIMENSIONS],
            set_={
                "quantity_e4": c.c.quantity_e4 + stmt.excluded.quantity_e4,
                "records": c.c.records + stmt.excluded.records,
            },
        )
        conn.execute(stmt)


def _recorded_sql(dialect: str, deltas: str, events: str) -> str:
    columns = (
        "notification_id, institution_code, staff_id, item_code, month, compliant, "
        "quantity_e4, records"
    )
    if dialect == "postgresql":
        return (
            f"INSERT INTO {deltas} ({columns}) "
            "SELECT notification_id, j->>'institution_code', j->>'staff_id', j->>'item_code', "
            "substr(j->'service_date'->>'_data_', 1, 7), (j->>'compliant')::boolean, "
            "((j->'quantity'->>'_data_')::numeric * 10000)::bigint, 1 "
            f"FROM (SELECT notification_id, convert_from(state, 'UTF8')::jsonb AS j FROM {events} "
            "WHERE notification_id > :start AND notification_id <= :stop AND topic = :topic "
            # OFFSET 0 keeps the planner from folding the subquery into the outer SELECT,
            # which would parse each event's JSON once per field (measured 4.5x slower).
            "OFFSET 0) AS e"
        )
    # Exact decimal text → integer × 10^4 without going through floating point.
    scaled = (
        "CASE WHEN instr(q, '.') = 0 THEN CAST(q AS INTEGER) * 10000 "
        "ELSE CAST(substr(q, 1, instr(q, '.') - 1) AS INTEGER) * 10000 "
        "+ CAST(substr(substr(q, instr(q, '.') + 1) || '0000', 1, 4) AS INTEGER) END"
    )
    return (
        f"INSERT INTO {deltas} ({columns}) "
        f"SELECT id, i, s, it, m, c, {scaled}, 1 FROM ("
        "SELECT rowid AS id, json_extract(j, '$.institution_code') AS i, "
        "json_extract(j, '$.staff_id') AS s, json_extract(j, '$.item_code') AS it, "
        "substr(json_extract(j, '$.service_date._data_'), 1, 7) AS m, "
        "json_extract(j, '$.compliant') AS c, json_extract(j, '$.quantity._data_') AS q "
        f"FROM (SELECT rowid, CAST(state AS TEXT) AS j FROM {events} "
        "WHERE rowid > :start AND rowid <= :stop AND topic = :topic))"
    )


def _state_before(log: EventLog, originator_id: Any, version: int) -> dict[str, Any]:
    """The record's cell just before its event at `version`, folded from its own events."""
    state: dict[str, Any] = {}
    for stored in log.app_recorder.select_events(originator_id, lte=version - 1):
        e = log.mapper.to_domain_event(stored)
        if isinstance(e, ServiceRecord.Recorded):
            state = {
                "institution_code": e.institution_code,
                "staff_id": e.staff_id,
                "item_code": e.item_code,
                "month": month_of(e.service_date),
                "compliant": e.compliant,
                "quantity_e4": _e4(e.quantity),
            }
        elif isinstance(e, ServiceRecord.Corrected):
            state.update(
                staff_id=e.staff_id,
                item_code=e.item_code,
                month=month_of(e.service_date),
                compliant=e.compliant,
                quantity_e4=_e4(e.quantity),
            )
    return state


def _e4(value: Decimal) -> int:
    return int(value * SCALE)


# ---- reading --------------------------------------------------------------------------------


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


def months_of(period: str) -> list[str]:
    """`2024-03` → that month; `2024` → its twelve months."""
    if len(period) == 4:
        return [f"{period}-{m:02d}" for m in range(1, 13)]
    return [period]


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
) -> Iterator[Cell]:
    """The non-empty cells of these months, now (from the cube) or as the log stood at
    `position`, valued with the equivalent values known then.

    At a position P the answer is the cube (standing at C ≥ P) minus the deltas recorded
    after P: right after a catch-up (the common case) there are none, and an audit replay of
    an older position reads only what came since. The cube's position is read before and
    after the cube itself; positions only move forward, so equal readings mean the cube read
    saw exactly C (PostgreSQL gives each statement its own snapshot). Otherwise, or if the
    cube is behind P, the deltas up to P are summed."""
    read = functools.partial(_cell_rows, conn, t, list(months), institution, by_staff)
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
        months_of(period),
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


def active_suffix(conn: Connection, name: str = "equivalents") -> str:
    return stored_version(conn, name) or "a"


def stored_version(conn: Connection, name: str) -> str | None:
    """The active version recorded for a projection (the equivalents cube's suffix, the
    inputs projection's format version), or None."""
    found = conn.execute(
        select(projection_versions.c.active).where(projection_versions.c.name == name)
    ).scalar_one_or_none()
    return str(found) if found is not None else None


def set_active_suffix(conn: Connection, suffix: str, name: str = "equivalents") -> None:
    conn.execute(projection_versions.delete().where(projection_versions.c.name == name))
    conn.execute(projection_versions.insert().values(name=name, active=suffix))


def cube_rows(conn: Connection, t: EquivalentsTables) -> Iterable[tuple[Any, ...]]:
    """Every non-empty cube cell, sorted: for comparing an incremental and a rebuilt cube."""
    c = t.cube
    query = (
        select(*(c.c[k] for k in _DIMENSIONS), c.c.quantity_e4, c.c.records)
        .where((c.c.quantity_e4 != 0) | (c.c.records != 0))
        .order_by(*(c.c[k] for k in _DIMENSIONS))
    )
    return [tuple(r) for r in conn.execute(query)]


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
    query = (
        "SELECT e.originator_id, d.item_code, d.month, d.staff_id, d.compliant, "
        "SUM(d.quantity_e4), SUM(d.records) "
        f"FROM {d.name} d JOIN {events_table} e ON e.{event_id} = d.notification_id "
        f"WHERE {' AND '.join(where)} "
        "GROUP BY e.originator_id, d.item_code, d.month, d.staff_id, d.compliant "
        "HAVING SUM(d.records) > 0"
    )
    cells_of = [tuple(r) for r in conn.execute(text(query), params)]
    source_ids = _source_ids(conn, events_table, [str(r[0]) for r in cells_of])
    out = [
        {
            "source_id": source_ids.get(str(originator), ""),
            "item": item_code,
            "month": month,
            "staff_id": staff,
            "compliant": bool(compliant),
            "quantity": str(Decimal(int(quantity)).scaleb(-4)),
        }
        for originator, item_code, month, staff, compliant, quantity, _ in cells_of
    ]
    out.sort(key=lambda r: (r["month"], r["item"], r["source_id"]))
    return out


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
            body = state if isinstance(state, str) else bytes(state).decode("utf-8")
            found[str(originator)] = json.loads(body)["source_id"]
    return found
