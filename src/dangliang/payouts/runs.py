"""Payout runs (支付批次) computed from the log: the run's results, adjustments for periods
already closed, replay, and the causes of every difference (DOMAIN.md §4 steps 10–11).

A run of period P at log position N:
- computes P through the compensation pipeline at N; a year-end settlement takes as advances
  what the approved monthly runs of that year actually paid (with their adjustments), not
  what the months would compute now;
- for every period Q closed by an approved run (an earlier month not covered by a settled
  year, or an earlier settled year) in which something changed since Q's run, adds a line per
  institution: `new amount − amount paid` (paid = Q's run plus adjustments already paid for Q),
  with the causes — which events since Q's run changed which figures. Paid runs are never
  edited; the difference is paid (or recovered) in P.
- `replay` recomputes a run at its own position and compares it with what it recorded.

Everything here is a function of (period, position): the same call at the same position gives
the same results, which is what makes a replay meaningful years later.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, and_, func, or_, select

from dangliang.calculation import compensation as comp
from dangliang.domain.periods import Period
from dangliang.domain.values import first_of_next_month
from dangliang.policy.parameters import BUILTIN_BUNDLES
from dangliang.policy.subsidy import COMPONENTS, ZERO, yuan
from dangliang.projections import facts as inp
from dangliang.projections import registry as reg
from dangliang.projections.equivalents import EquivalentsTables

CATEGORY_LABELS = {"basic_medical": "基本医疗", "basic_public_health": "基本公卫"}
FIGURES = ("coefficient", "total", "advances", "settlement")


@dataclass(frozen=True)
class ClosedPeriod:
    period: Period
    run: inp.RunRecord

    @property
    def label(self) -> str:
        return self.period.label


def period_of(label: str) -> Period:
    return Period(int(label[:4]), int(label[5:7]) if len(label) == 7 else None)


def period_end(period: Period) -> date:
    """The period's last day."""
    if period.month is None:
        return date(period.year, 12, 31)
    return first_of_next_month(period.year, period.month) - timedelta(days=1)


def _months(period: Period) -> list[str]:
    if period.month is None:
        return [f"{period.year}-{m:02d}" for m in range(1, 13)]
    return [period.label]


# ---- computing a run --------------------------------------------------------------------------


def compensation_runs(conn: Connection, position: int | None) -> dict[str, inp.RunRecord]:
    """The institution-compensation runs (not the staff distributions) up to `position`."""
    return {k: r for k, r in inp.runs_at(conn, position).items() if r.ledger == "compensation"}


def compute_run(
    conn: Connection, t: EquivalentsTables, period: Period, position: int
) -> dict[str, Any]:
    """The results a run of `period` at `position` records (deterministic, JSON-ready)."""
    runs = compensation_runs(conn, position)
    computation = comp.run(period, position, *_gather(conn, t, period, position, runs))
    out = computation.as_json()
    lines = adjustment_lines(conn, t, period, position, runs)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in out["institutions"]:
        row.pop("warnings", None)
        own = lines.get(row["code"], [])
        adjustments = sum((Decimal(line["amount"]) for line in own), ZERO)
        base = Decimal(row["advances"] if period.month else row["settlement"])
        row["adjustments"] = str(yuan(adjustments))  # sums of fen amounts: exact, "0.00" if none
        row["adjustment_lines"] = own
        row["payable"] = str(yuan(base + adjustments))
        for key in (*COMPONENTS, "total", "advances", "settlement", "adjustments", "payable"):
            value = row["components"][key] if key in COMPONENTS else row[key]
            totals[key] += Decimal(value)
    out["totals"] = {k: str(v) for k, v in totals.items()}
    out.pop("county_steps", None)
    return out


def _gather(
    conn: Connection,
    t: EquivalentsTables,
    period: Period,
    position: int,
    runs: Mapping[str, inp.RunRecord],
) -> tuple[inp.PolicyInForce, comp.CountyInputs]:
    """The period's inputs; a settlement takes as advances what the year's runs paid."""
    policy, county = comp.gather(conn, t, period, position)
    if period.month is not None:
        return policy, county
    paid = advances_paid(runs, period.year)
    return policy, comp.CountyInputs(
        county.year,
        {
            code: replace(inst, advances_paid=paid.get(code, ZERO))
            for code, inst in county.institutions.items()
        },
    )


def results_digest(results: Mapping[str, Any]) -> str:
    """sha256 of the results in canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(results, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(results: Mapping[str, Any]) -> str:
    return json.dumps(results, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# ---- what was paid ----------------------------------------------------------------------------


def closed_periods(runs: Mapping[str, inp.RunRecord]) -> dict[str, ClosedPeriod]:
    return {
        r.period: ClosedPeriod(period_of(r.period), r) for r in runs.values() if r.closes_period
    }


def _lines_paid(runs: Mapping[str, inp.RunRecord], label: str, code: str) -> Decimal:
    """Adjustments for period `label` already included in closed runs."""
    total = ZERO
    for r in runs.values():
        if not r.closes_period:
            continue
        for row in r.results["institutions"]:
            if row["code"] != code:
                continue
            for line in row.get("adjustment_lines", []):
                if line["period"] == label:
                    total += Decimal(line["amount"])
    return total


def advances_paid(runs: Mapping[str, inp.RunRecord], year: int) -> dict[str, Decimal]:
    """Per institution: the advances of `year`'s approved monthly runs, with the adjustments
    paid for those months (in any approved run)."""
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for r in runs.values():
        if not r.closes_period:
            continue
        for row in r.results["institutions"]:
            if len(r.period) == 7 and r.period[:4] == str(year):
                paid[row["code"]] += Decimal(row["advances"])
            for line in row.get("adjustment_lines", []):
                if len(line["period"]) == 7 and line["period"][:4] == str(year):
                    paid[row["code"]] += Decimal(line["amount"])
    return dict(paid)


def _amount(row: Mapping[str, Any], period: Period) -> Decimal:
    """What a period's run decides for an institution: a month's advance, a year's total."""
    return Decimal(row["advances"] if period.month else row["total"])


# ---- adjustments ------------------------------------------------------------------------------


def adjustment_candidates(period: Period, runs: Mapping[str, inp.RunRecord]) -> list[ClosedPeriod]:
    """Closed periods a run of `period` must re-check: earlier months not covered by a settled
    year (a settlement covers its own months), and earlier settled years."""
    closed = closed_periods(runs)
    settled = {q.period.year for q in closed.values() if q.period.month is None}
    out = []
    for q in closed.values():
        if q.label == period.label or period_end(q.period) >= period_end(period):
            continue
        if q.period.month is not None:
            if q.period.year in settled:
                continue
            if period.month is None and q.period.year == period.year:
                continue
        out.append(q)
    return sorted(out, key=lambda q: period_end(q.period))


def adjustment_lines(
    conn: Connection,
    t: EquivalentsTables,
    period: Period,
    position: int,
    runs: Mapping[str, inp.RunRecord],
) -> dict[str, list[dict[str, Any]]]:
    """Per institution, one line per closed period whose amount changed since it was paid."""
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for q in adjustment_candidates(period, runs):
        since = q.run.position
        if not changed_since(conn, t, q.period, since, position):
            continue
        new = comp.run(q.period, position, *_gather(conn, t, q.period, position, runs)).as_json()
        new_rows = {r["code"]: r for r in new["institutions"]}
        for old in q.run.results["institutions"]:
            code = old["code"]
            now = new_rows.get(code)
            if now is None:
                continue
            paid_amount = _amount(old, q.period) + _lines_paid(runs, q.label, code)
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
    months = _months(period)
    d, v, f = t.deltas, reg.item_values, inp.facts
    return (
        _any_between(conn, d, since, until, d.c.month.in_(months))
        or _any_between(conn, v, since, until, v.c.effective_from <= period_end(period))
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
            d.c.month.in_(_months(period)),
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
            v.c.effective_from <= period_end(period),
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
            if date.fromisoformat(body["start"]) > period_end(period):
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


# ---- replay and diff --------------------------------------------------------------------------


def compare(recorded: Any, recomputed: Any, path: str = "") -> list[str]:
    """Every difference between two results, as `path: recorded != recomputed`."""
    if isinstance(recorded, Mapping) and isinstance(recomputed, Mapping):
        out = []
        for key in sorted(set(recorded) | set(recomputed)):
            out.extend(compare(recorded.get(key), recomputed.get(key), f"{path}.{key}".lstrip(".")))
        return out
    if isinstance(recorded, list) and isinstance(recomputed, list):
        if all(isinstance(r, Mapping) and "code" in r for r in recorded + recomputed):
            a = {r["code"]: r for r in recorded}
            b = {r["code"]: r for r in recomputed}
            return compare(a, b, path)
        if len(recorded) != len(recomputed):
            return [f"{path}: {len(recorded)} items != {len(recomputed)} items"]
        out = []
        for i, (x, y) in enumerate(zip(recorded, recomputed, strict=True)):
            out.extend(compare(x, y, f"{path}[{i}]"))
        return out
    if recorded != recomputed:
        return [f"{path}: recorded {recorded} != recomputed {recomputed}"]
    return []


def diff_runs(
    conn: Connection, t: EquivalentsTables, a: inp.RunRecord, b: inp.RunRecord
) -> dict[str, Any]:
    """What differs between two runs, per institution, and the events between their positions
    that explain it (for runs of the same period, or any two runs)."""
    first, second = (a, b) if a.position <= b.position else (b, a)
    rows_a = {r["code"]: r for r in first.results["institutions"]}
    out = []
    for row in second.results["institutions"]:
        old = rows_a.get(row["code"])
        if old is None:
            continue
        changes = figure_changes(old, row)
        if not changes and first.period == second.period:
            continue
        why = []
        if first.period == second.period and first.position != second.position:
            why = causes(
                conn,
                t,
                row["code"],
                period_of(first.period),
                first.position,
                second.position,
                old,
                row,
            )[len(changes) :]
        out.append(
            {"code": row["code"], "name": row.get("name", ""), "changes": changes, "causes": why}
        )
    return {
        "from": {"run_id": first.run_id, "position": first.position},
        "to": {"run_id": second.run_id, "position": second.position},
        "institutions": out,
    }


def run_header(run: inp.RunRecord) -> dict[str, Any]:
    """Who computed, approved and paid a run, and what it stands on (any ledger)."""
    approved = next((h for h in run.history if h["state"] == "approved"), None)
    paid = next((h for h in run.history if h["state"] == "paid"), None)
    rejected = next((h for h in run.history if h["state"] == "rejected"), None)
    return {
        "run_id": run.run_id,
        "period": run.period,
        "kind": run.results.get("kind"),
        "state": run.state,
        "computed_by": run.computed_by,
        "computed_at": run.computed_at,
        "approved_by": approved["actor"] if approved else None,
        "approved_at": approved["at"] if approved else None,
        "approval_reference": approved["note"] if approved else None,
        "paid_reference": paid["note"] if paid else None,
        "rejected_reason": rejected["note"] if rejected else None,
        "supersedes": run.supersedes,
        "position": run.position,
        "position_recorded_at": run.position_recorded_at,
        "chain_head": run.chain_head,
        "policy": {"bundle": run.policy_bundle, "parameters_digest": run.parameters_digest},
        "results_digest": run.results_digest,
        "software": run.software,
        "illustrative": run.policy_bundle.removesuffix(".yaml") in BUILTIN_BUNDLES,
    }


def run_json(run: inp.RunRecord) -> dict[str, Any]:
    """A payout run as one JSON document (statements, `payout show --json`, the API)."""
    results = run.results
    return {
        **run_header(run),
        "institutions": [
            {
                k: row.get(k)
                for k in (
                    "code",
                    "name",
                    "components",
                    "total",
                    "advances",
                    "settlement",
                    "adjustments",
                    "payable",
                    "adjustment_lines",
                )
            }
            for row in results["institutions"]
        ],
        "totals": results["totals"],
    }
