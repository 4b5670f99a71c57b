"""Queries on the insurance fund's claims and enrolment (`insurance_cube`), each as the log
stood at a position.

At the head (no position, or one at or past the projection's) the current sums are read. At
an earlier position P the answer is the current sums minus the deltas recorded after P —
right after a catch-up there are few of them — or, when P lies nearer the start of the log
than its end, the deltas up to P summed. As with the equivalents cube, the projection's
position is read before and after the sums; positions only move forward, so equal readings
mean the sums were read at exactly that position.

Enrolment is kept as change points: people enrolled in a month are the sum of the changes in
that month and every month before it, taken here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Select, and_, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from dangliang.projections.insurance_cube import (
    DEFAULT_TABLES,
    ENROLMENT_CELL,
    SPENDING_CELL,
    InsuranceTables,
)
from dangliang.projections.tracking import position as tracking_position

Rows = list[tuple[Any, ...]]  # key columns, then the summed value
Read = Callable[..., Rows]  # (after=…, upto=…) → deltas summed; no bounds → current sums


def enrolled(
    conn: Connection, year: int, position: int | None, *, t: InsuranceTables = DEFAULT_TABLES
) -> dict[str, dict[tuple[int, str, str], int]]:
    """People enrolled per community: {(month 1–12, insurance type, age band): people}, as
    the log stood at `position`; months with nobody are absent."""
    last = f"{year:04d}-12"

    def read(*, after: int | None = None, upto: int | None = None) -> Rows:
        source = t.enrolment_changes if upto is None else t.enrolment_deltas
        value = source.c.delta
        query = _summed(source, ENROLMENT_CELL, value, after, upto).where(source.c.month <= last)
        return _rows(conn, query)

    first = f"{year:04d}-01"
    running: dict[tuple[str, str, str], int] = defaultdict(int)  # people before the year
    in_year: dict[tuple[str, str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for community, insurance_type, band, month, change in _as_of(conn, t, position, read):
        key = (community, insurance_type, band)
        if month < first:
            running[key] += int(change)
        else:
            in_year[key][int(month[5:7])] += int(change)
    out: dict[str, dict[tuple[int, str, str], int]] = defaultdict(dict)
    for key in sorted(set(running) | set(in_year)):
        people = running.get(key, 0)
        changes = in_year.get(key, {})
        for month in range(1, 13):
            people += changes.get(month, 0)
            if people:
                out[key[0]][(month, key[1], key[2])] = people
    return {code: dict(sorted(cells.items())) for code, cells in out.items()}


def spending(
    conn: Connection, year: int, position: int | None, *, t: InsuranceTables = DEFAULT_TABLES
) -> dict[str, dict[tuple[int, bool], int]]:
    """What the fund paid per community: {(month 1–12, out of area): fen}, as the log stood
    at `position`; cells with nothing are absent."""
    out: dict[str, dict[tuple[int, bool], int]] = defaultdict(dict)
    for community, month, out_of_area, fen in _spending_rows(conn, t, year, position):
        if fen:
            out[community][(int(month[5:7]), bool(out_of_area))] = int(fen)
    return dict(out)


def county_spending(
    conn: Connection, year: int, position: int | None, *, t: InsuranceTables = DEFAULT_TABLES
) -> int:
    """What the fund paid in the whole year, all communities (fen), as at `position`."""
    return sum(int(row[-1]) for row in _spending_rows(conn, t, year, position))


def _spending_rows(conn: Connection, t: InsuranceTables, year: int, position: int | None) -> Rows:
    months = (f"{year:04d}-01", f"{year:04d}-12")

    def read(*, after: int | None = None, upto: int | None = None) -> Rows:
        source = t.spending if upto is None else t.spending_deltas
        value = source.c.fund_fen if upto is None else source.c.delta_fen
        query = _summed(source, SPENDING_CELL, value, after, upto)
        return _rows(conn, query.where(source.c.month.between(*months)))

    return _as_of(conn, t, position, read)


def _summed(
    source: Any, cell: tuple[str, ...], value: Any, after: int | None, upto: int | None
) -> Select[Any]:
    columns = [source.c[k] for k in cell]
    query = select(*columns, func.sum(value)).group_by(*columns)
    if upto is not None:
        query = query.where(source.c.notification_id <= upto)
    if after is not None:
        query = query.where(source.c.notification_id > after)
    return query


def _rows(conn: Connection, query: Select[Any]) -> Rows:
    return [tuple(r) for r in conn.execute(query)]


def _as_of(conn: Connection, t: InsuranceTables, position: int | None, read: Read) -> Rows:
    """Summed cells as the log stood at `position` (see the module)."""
    for _ in range(3):
        at = tracking_position(conn, t.tracking_name)
        if at == 0:
            return []  # nothing applied yet (the tables may not even exist)
        if position is None or position >= at:
            rows = read()
        elif position < at - position:
            return read(upto=position)  # nearer the start: the deltas up to it
        else:
            rows = _subtract(read(), read(after=position, upto=at))
        if position is None or tracking_position(conn, t.tracking_name) == at:
            return rows
    return read(upto=position)  # the projection kept moving: the deltas, which stay put


def _subtract(rows: Rows, later: Rows) -> Rows:
    sums: dict[tuple[Any, ...], int] = {tuple(r[:-1]): int(r[-1]) for r in rows}
    for r in later:
        key = tuple(r[:-1])
        sums[key] = sums.get(key, 0) - int(r[-1])
    return [(*key, value) for key, value in sums.items()]


# ---- the records behind the figures ---------------------------------------------------------


def claims_in(
    conn: Connection,
    *,
    community: str,
    year: int,
    position: int | None,
    month: int | None = None,
    limit: int | None = None,
    t: InsuranceTables = DEFAULT_TABLES,
) -> list[dict[str, Any]]:
    """The claims counted in a community's spending of the year (or one month), as the log
    stood at `position`: each claim's latest version by then, voided ones left out, with the
    notification id of that version and its import reference (and reason, if corrected);
    ordered by settlement date and claim id."""
    c = t.claims
    if not _started(conn, t):
        return []
    months = (f"{year:04d}-01", f"{year:04d}-12")
    if month is not None:
        months = (f"{year:04d}-{month:02d}",) * 2
    query = (
        select(c)
        .where(
            c.c.community_code == community,
            c.c.month.between(*months),
            c.c.state != "voided",
            _latest(c, c.c.claim_id, position),
        )
        .order_by(c.c.settled_on, c.c.claim_id)
    )
    return [_claim(r._mapping) for r in conn.execute(_bounded(query, c, position, limit))]


def enrolments_in(
    conn: Connection,
    *,
    community: str,
    year: int,
    position: int | None,
    limit: int | None = None,
    t: InsuranceTables = DEFAULT_TABLES,
) -> list[dict[str, Any]]:
    """The enrolments counted in a community's year (enrolled in at least one of its months),
    as the log stood at `position`: each one's latest version by then, voided ones left out;
    ordered by insured person and first month."""
    e = t.enrolments
    if not _started(conn, t):
        return []
    query = (
        select(e)
        .where(
            e.c.community_code == community,
            _overlaps(e, year),
            e.c.state != "voided",
            _latest(e, (e.c.insured_ref, e.c.from_month), position),
        )
        .order_by(e.c.insured_ref, e.c.from_month)
    )
    return [_enrolment(r._mapping) for r in conn.execute(_bounded(query, e, position, limit))]


def _started(conn: Connection, t: InsuranceTables) -> bool:
    """Whether the projection has applied anything (before that its tables may not exist)."""
    return tracking_position(conn, t.tracking_name) > 0


def _latest(table: Any, key: Any, position: int | None) -> ColumnElement[bool]:
    """No later version of the same record (by `position`, if given)."""
    later = table.alias("later")
    keys = key if isinstance(key, tuple) else (key,)
    same = [later.c[k.name] == k for k in keys]
    condition = and_(*same, later.c.notification_id > table.c.notification_id)
    if position is not None:
        condition = and_(condition, later.c.notification_id <= position)
    return ~exists().where(condition)


def _bounded(query: Select[Any], table: Any, position: int | None, limit: int | None) -> Any:
    if position is not None:
        query = query.where(table.c.notification_id <= position)
    return query.limit(limit) if limit is not None else query


def _overlaps(e: Any, year: int) -> ColumnElement[bool]:
    return and_(
        e.c.from_month <= f"{year:04d}-12",
        or_(e.c.to_month.is_(None), e.c.to_month >= f"{year:04d}-01"),
    )


def _claim(r: Any) -> dict[str, Any]:
    return {
        "claim_id": r["claim_id"],
        "insured_ref": r["insured_ref"],
        "community": r["community_code"],
        "institution": r["institution_code"],
        "out_of_area": bool(r["out_of_area"]),
        "settled_on": r["settled_on"],
        "month": r["month"],
        "fund_fen": int(r["fund_fen"]),
        "state": r["state"],
        "notification_id": int(r["notification_id"]),
        "import_ref": r["import_ref"],
        "reason": r["reason"],
    }


def _enrolment(r: Any) -> dict[str, Any]:
    return {
        "insured_ref": r["insured_ref"],
        "from_month": r["from_month"],
        "to_month": r["to_month"],
        "insurance_type": r["insurance_type"],
        "birth_date": r["birth_date"],
        "home": r["home"],
        "community": r["community_code"],
        "state": r["state"],
        "notification_id": int(r["notification_id"]),
        "import_ref": r["import_ref"],
        "reason": r["reason"],
    }


# ---- what changed between two positions -------------------------------------------------------


def changes_between(
    conn: Connection,
    *,
    year: int,
    after: int,
    upto: int,
    t: InsuranceTables = DEFAULT_TABLES,
) -> dict[str, list[dict[str, Any]]]:
    """The claim and enrolment events with `after` < notification id ≤ `upto` that touch the
    year, per community they touch (a claim moved from one community to another is listed
    under both): what kind (settled / recorded / corrected / voided), the record, its values
    before and after, the reason and the import reference — the causes of a difference
    between two computations of the year. In notification-id order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not _started(conn, t):
        return {}
    found = [
        *_versions(conn, t.claims, (t.claims.c.claim_id,), after, upto),
        *_versions(
            conn, t.enrolments, (t.enrolments.c.insured_ref, t.enrolments.c.from_month), after, upto
        ),
    ]
    for row, old in sorted(found, key=lambda pair: int(pair[0]["notification_id"])):
        claim = "claim_id" in row
        shape = _claim if claim else _enrolment
        new = None if row["state"] == "voided" else shape(row)
        before = shape(old) if old is not None else None
        touched = [v for v in (before, new) if v is not None and _touches(v, year)]
        if not touched:
            continue
        kind = row["state"]
        if kind == "recorded" and claim:
            kind = "settled"
        change = {
            "notification_id": int(row["notification_id"]),
            "record": "claim" if claim else "enrolment",
            "kind": kind,
            **(
                {"claim_id": row["claim_id"], "insured_ref": row["insured_ref"]}
                if claim
                else {"insured_ref": row["insured_ref"], "from_month": row["from_month"]}
            ),
            "ref": row["claim_id"] if claim else f"{row['insured_ref']}/{row['from_month']}",
            "old": _values(before),
            "new": _values(new),
            **_in_short(claim, before, new),
            "reason": row["reason"],
            "import_ref": row["import_ref"],
        }
        for community in sorted({v["community"] for v in touched}):
            out[community].append(change)
    return dict(out)


def _versions(
    conn: Connection, table: Any, key: tuple[Any, ...], after: int, upto: int
) -> list[tuple[Any, Any]]:
    """Each version row in (after, upto] with the version before it (None for a first)."""
    previous = table.alias("previous")
    earlier = table.alias("earlier")
    latest_before = (
        select(func.max(earlier.c.notification_id))
        .where(*(earlier.c[k.name] == k for k in key))
        .where(earlier.c.notification_id < table.c.notification_id)
        .scalar_subquery()
    )
    query = (
        select(table, *(c.label(f"previous_{c.name}") for c in previous.c))
        .select_from(
            table.outerjoin(
                previous,
                and_(table.c.state != "recorded", previous.c.notification_id == latest_before),
            )
        )
        .where(table.c.notification_id > after, table.c.notification_id <= upto)
    )
    names = [c.name for c in table.c]
    out: list[tuple[Any, Any]] = []
    for r in conn.execute(query):
        m = r._mapping
        row = {n: m[n] for n in names}
        old = {n: m[f"previous_{n}"] for n in names}
        out.append((row, old if old["notification_id"] is not None else None))
    return out


def _in_short(claim: bool, before: Any, new: Any) -> dict[str, Any]:
    """The amounts (fen) or months (`from–to`, open: `from–`) before and after, or None."""
    if claim:
        return {
            "old_fen": before and before["fund_fen"],
            "new_fen": new and new["fund_fen"],
        }

    def span(v: Any) -> str | None:
        return v and f"{v['from_month']}–{v['to_month'] or ''}"

    return {"old_months": span(before), "new_months": span(new)}


def _touches(v: dict[str, Any], year: int) -> bool:
    if "month" in v:
        return int(v["month"][:4]) == year
    return v["from_month"] <= f"{year:04d}-12" and (
        v["to_month"] is None or v["to_month"] >= f"{year:04d}-01"
    )


_SHOWN = {  # what a change shows of a version, before and after
    "claim": ("community", "institution", "out_of_area", "settled_on", "month", "fund_fen"),
    "enrolment": ("community", "insurance_type", "birth_date", "home", "from_month", "to_month"),
}


def _values(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {k: v[k] for k in _SHOWN["claim" if "claim_id" in v else "enrolment"]}
