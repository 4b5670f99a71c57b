"""Adjustments (调整) for periods already paid, and their causes: which closed periods a run
must re-check, one line per institution whose amount changed since its period was paid
(`new amount − amount paid`), and which events since that run changed which figures.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, and_, func, or_, select

from dangliang.calculation import compensation as comp
from dangliang.domain.periods import Period
from dangliang.payouts.paid_periods import ClosedPeriod, _amount, closed_periods, gather, lines_paid
from dangliang.policy.subsidy_records import COMPONENTS
from dangliang.projections import facts as inp
from dangliang.projections import registry as reg
from dangliang.projections.equivalents import EquivalentsTables
from dangliang.projections.facts_queries import RunRecord

CATEGORY_LABELS = {"basic_medical": "基本医疗", "basic_public_health": "基本公卫"}
FIGURES = ("coefficient", "total", "advances", "settlement")


# ---- adjustments ------------------------------------------------------------------------------


def adjustment_candidates(period: Period, runs: Mapping[str, RunRecord]) -> list[ClosedPeriod]:
    """Closed periods a run of `period` must re-check: earlier months not covered by a settled
    year (a settlement covers its own months), and earlier settled years."""
    closed = closed_periods(runs)
    settled = {q.period.year for q in closed.values() if q.period.month is None}
    out = []
    for q in closed.values():
        if q.label == period.label or q.period.last_day >= period.last_day:
            continue
        if q.period.month is not None:
            if q.period.year in settled:
                continue
            if period.month is None and q.period.year == period.year:
                continue
        out.append(q)
    return sorted(out, key=lambda q: q.period.last_day)


def adjustment_lines(
    conn: Connection,
    t: EquivalentsTables,
    period: Period,
    position: int,
    runs: Mapping[str, RunRecord],
) -> dict[str, list[dict[str, Any]]]:
    """Per institution, one line per closed period whose amount changed since it was paid."""
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for q in adjustment_candidates(period, runs):
        since = q.run.position
        if not changed_since(conn, t, q.period, since, position):
            continue
        new = comp.run(q.period, position, *gather(conn, t, q.period, position, runs)).as_json()
        new_rows = {r["code"]: r for r in new["institutions"]}
        for old in q.run.results["institutions"]:
            code = old["code"]
            now = new_rows.get(code)
            if now is None:
                continue
            paid_amount = _amount(old, q.period) + lines_paid(runs, q.label, code)
            amount = _amount(now, q.period) - paid_amount
            if amount == 0:
                continue
            lines[code].append(
                {
                    "period": q.label,
                    "run_id": q.run.run_id,
                    "paid": str(paid_amount),
                    "new": str(_amount(now, q.period)),
                    "amount": str(amount),
                    "causes": causes(conn, t, code, q.period, since, position, old, now),
                }
            )
    return dict(lines)


def changed_since(
    conn: Connection, t: EquivalentsTables, period: Period, since: int, until: int
) -> bool:
    """Whether any event in (since, until] can change `period`'s amounts."""
    months = period.month_labels
    d, v, f = t.deltas, reg.item_values, inp.facts
    return (
        _any_between(conn, d, since, until, d.c.month.in_(months))
        or _any_between(conn, v, since, until, v.c.effective_from <= period.last_day)
        or _any_between(
            conn,
            f,
            since,
            until,
            f.c.kind.in_((*inp.INPUT_KINDS, "policy", "parameter_change")),
            or_(f.c.year.is_(None), f.c.year.in_((period.year, period.year - 1))),
        )
    )


def _any_between(conn: Connection, table: Table, since: int, until: int, *where: Any) -> bool:
    """Whether `table` has a row recorded in (since, until] that matches `where`."""
    found = conn.execute(
        select(table.c.notification_id)
        .where(table.c.notification_id > since, table.c.notification_id <= until, *where)
        .limit(1)
    ).first()
    return found is not None


# ---- causes -----------------------------------------------------------------------------------


def causes(
    conn: Connection,
    t: EquivalentsTables,
    code: str,
    period: Period,
    since: int,
    until: int,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
) -> list[str]:
    """Which figures changed (old → new) and which events in (since, until] changed them."""
    out = figure_changes(old, new)
    out.extend(service_events(conn, t, code, period, since, until))
    out.extend(value_changes(conn, period, since, until))
    out.extend(input_changes(conn, code, period, since, until))
    return out


def figure_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for category, label in CATEGORY_LABELS.items():
        a = old["equivalents"][category]["bought"]
        b = new["equivalents"][category]["bought"]
        if Decimal(a) != Decimal(b):
            out.append(f"{label}当量 / {category} equivalents {a} → {b}")
    for c in COMPONENTS:
        a, b = old["components"][c], new["components"][c]
        if Decimal(a) != Decimal(b):
            out.append(f"{c} {a} → {b}")
    for key in FIGURES:
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None and Decimal(a) != Decimal(b):
            out.append(f"{key} {a} → {b}")
    return out


def service_events(
    conn: Connection,
    t: EquivalentsTables,
    code: str,
    period: Period,
    since: int,
    until: int,
) -> list[str]:
    """Service records recorded late, corrected, or voided (or moved out) in the period."""
    d = t.deltas
    rows = conn.execute(
        select(d.c.notification_id, func.count(), func.sum(d.c.records))
        .where(
            d.c.institution_code == code,
            d.c.month.in_(period.month_labels),
            d.c.notification_id > since,
            d.c.notification_id <= until,
        )
        .group_by(d.c.notification_id)
        .order_by(d.c.notification_id)
    ).all()
    if not rows:
        return []
    kinds: dict[str, list[int]] = defaultdict(list)
    for nid, count, records in rows:
        kind = "corrected" if count > 1 else "recorded late" if records > 0 else "voided or moved"
        kinds[kind].append(int(nid))
    labels = {"recorded late": "补录", "corrected": "更正", "voided or moved": "作废或移出"}
    parts = [
        f"{len(ids)} {labels[k]} / {k} (notifications {_ranges(ids)})"
        for k, ids in sorted(kinds.items())
    ]
    return [f"服务记录 / service records: {'; '.join(parts)}"]


def value_changes(conn: Connection, period: Period, since: int, until: int) -> list[str]:
    v = reg.item_values
    rows = conn.execute(
        select(v.c.notification_id, v.c.item_code, v.c.effective_from, v.c.value_e4, v.c.reference)
        .where(
            v.c.notification_id > since,
            v.c.notification_id <= until,
            v.c.effective_from <= period.last_day,
        )
        .order_by(v.c.notification_id)
    ).all()
    return [
        f"当量值调整 / equivalent value: {item} = {Decimal(value).scaleb(-4)} from {start} "
        f"({reference}; notification {nid})"
        for nid, item, start, value, reference in rows
    ]


def input_changes(conn: Connection, code: str, period: Period, since: int, until: int) -> list[str]:
    f = inp.facts
    rows = conn.execute(
        select(f.c.notification_id, f.c.kind, f.c.key, f.c.payload)
        .where(
            f.c.notification_id > since,
            f.c.notification_id <= until,
            or_(
                f.c.kind.in_(("policy", "parameter_change", "force_majeure")),
                and_(
                    f.c.institution_code == code,
                    f.c.kind.in_(inp.INPUT_KINDS),
                    or_(f.c.year.is_(None), f.c.year == period.year),
                ),
            ),
        )
        .order_by(f.c.notification_id)
    ).all()
    out = []
    for nid, kind, key, payload in rows:
        body = json.loads(payload)
        if kind == "parameter_change":
            if date.fromisoformat(body["start"]) > period.last_day:
                continue
            out.append(
                f"政策参数调整 / parameter change: {body['path']} = "
                f"{json.loads(body['value_json'])} from {body['start']} "
                f"({body['reason']}，批准：{body['approver']}; "
                f"notification {nid})"
            )
        elif kind == "policy":
            out.append(
                f"政策参数包重新采用 / policy adopted: {body['bundle_name']} (notification {nid})"
            )
        else:
            shown = {k: v for k, v in body.items() if k not in ("canonical_json",)}
            out.append(
                f"输入 / input {kind} {key}: {shown} (notification {nid})".replace("  ", " ")
            )
    return out


def _ranges(ids: Iterable[int]) -> str:
    """[5, 6, 7, 9] → "5–7, 9"."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(ids):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [n]
    if run:
        out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)
