"""Insurance fund runs (医保基金拨付批次): advances to each medical community for a month or
a quarter (按月/按季预拨) and the year-end settlement (年终清算), as payout runs of their own
ledger (periods `ins-2024-03`, `ins-2024-Q1`, `ins-2024`) — maker-checker approval, replay
and hash-chain verification as for every payout run (docs/insurance.md).

A run of period P at log position N records, per community:
- an advance period: the period's budget, spending and `advance` (what the fund pays now);
- a year: the year's figures, `final` (what the fund pays the community for the year), the
  advances the approved advance runs of the year paid, and `settlement = final − advances`;
- for every earlier year settled by an approved run whose figures have changed since (a
  claim or an enrolment corrected after payment, a late score…): a line `new final − paid`
  with its causes. A paid run is never edited; the difference is paid (or recovered) in P.
`payable` = advance (or settlement) + adjustments.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection

from dangliang.calculation import fund as calc
from dangliang.domain.payout import INSURANCE, bare_period
from dangliang.domain.periods import Period
from dangliang.policy.insurance_records import yuan_text
from dangliang.projections import facts_queries as inp
from dangliang.projections import insurance_inputs as facts
from dangliang.projections import insurance_queries as q
from dangliang.projections.equivalents import EquivalentsTables

FACTS_ZH = {
    "community": "医共体信息",
    "community_score": "医共体考核得分",
    "fund_year": "医保基金年度数据",
    "enrolment_count": "参保人数",
}


def insurance_runs(conn: Connection, position: int | None) -> dict[str, inp.RunRecord]:
    return {k: r for k, r in inp.runs_at(conn, position).items() if r.ledger == "insurance"}


def fen(text: str) -> int:
    """ "-12.34" → -1234 (the run results hold yuan text with exactly two places)."""
    sign = -1 if text.startswith("-") else 1
    whole, _, cents = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int(cents or 0))


def compute_run(
    conn: Connection, t: EquivalentsTables, period: Period, position: int
) -> dict[str, Any]:
    """The results a fund run of `period` at `position` records (deterministic, JSON-ready)."""
    runs = insurance_runs(conn, position)
    computation = calc.compute(conn, t, period, position)
    out = computation.as_json()
    paid = advances_paid(runs, period.year) if period.is_year else {}
    lines = adjustment_lines(conn, t, period, position, runs)
    totals: dict[str, int] = defaultdict(int)
    for row in out["communities"]:
        figures = row["figures"]
        if period.is_year:
            row["advances_paid"] = yuan_text(paid.get(row["code"], 0))
            row["settlement"] = yuan_text(fen(figures["final"]) - paid.get(row["code"], 0))
            base = fen(row["settlement"])
        else:
            base = fen(figures["advance"])
        own = lines.get(row["code"], [])
        adjustments = sum(fen(line["amount"]) for line in own)
        row["adjustments"] = yuan_text(adjustments)
        row["adjustment_lines"] = own
        row["payable"] = yuan_text(base + adjustments)
        for key in ("budget", "spending", "advance", "final"):
            if key in figures:
                totals[key] += fen(figures[key])
        for key in ("advances_paid", "settlement", "adjustments", "payable"):
            if key in row:
                totals[key] += fen(row[key])
    out["totals"] = {k: yuan_text(v) for k, v in totals.items()}
    return out


def advances_paid(runs: dict[str, inp.RunRecord], year: int) -> dict[str, int]:
    """Per community, the advances the closed (approved or paid) advance runs of `year` paid."""
    paid: dict[str, int] = defaultdict(int)
    for run in runs.values():
        label = bare_period(run.period)
        if run.closes_period and len(label) == 7 and label.startswith(f"{year}-"):
            for row in run.results["communities"]:
                paid[row["code"]] += fen(row["figures"]["advance"])
    return dict(paid)


def _paid_for_year(
    runs: dict[str, inp.RunRecord], year: int
) -> tuple[inp.RunRecord | None, dict[str, int]]:
    """The closing run of `year` and, per community, what was paid for the year: its final
    plus the adjustment lines for that year in later closed runs."""
    closing = next(
        (r for r in runs.values() if r.closes_period and r.period == f"{INSURANCE}{year}"), None
    )
    if closing is None:
        return None, {}
    paid = {row["code"]: fen(row["figures"]["final"]) for row in closing.results["communities"]}
    for run in runs.values():
        if run.closes_period and run.run_id != closing.run_id:
            for row in run.results["communities"]:
                for line in row.get("adjustment_lines", []):
                    if line["period"] == str(year):
                        paid[row["code"]] = paid.get(row["code"], 0) + fen(line["amount"])
    return closing, paid


def adjustment_lines(
    conn: Connection,
    t: EquivalentsTables,
    period: Period,
    position: int,
    runs: dict[str, inp.RunRecord],
) -> dict[str, list[dict[str, Any]]]:
    """Per community, a line for every settled earlier year whose final has changed."""
    years = sorted(
        {
            int(bare_period(r.period))
            for r in runs.values()
            if r.closes_period and len(bare_period(r.period)) == 4
        }
    )
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for year in years:
        if period.is_year and year == period.year:
            continue  # (closed: a settled year is never run again)
        closing, paid = _paid_for_year(runs, year)
        if closing is None or closing.position >= position:
            continue
        again = calc.compute(conn, t, Period(year), position)
        why = causes(conn, year, closing.position, position)
        for code, community in sorted(again.result.communities.items()):
            difference = community.figures["final"] - paid.get(code, 0)
            if difference:
                out[code].append(
                    {
                        "period": str(year),
                        "amount": yuan_text(difference),
                        "final_now": yuan_text(community.figures["final"]),
                        "paid": yuan_text(paid.get(code, 0)),
                        "settled_by": closing.run_id,
                        "causes": why.get(code, []) + why.get("", []),
                    }
                )
    return dict(out)


def causes(conn: Connection, year: int, after: int, upto: int) -> dict[str, list[str]]:
    """Per community ("" = the whole fund), the events since a run that touch `year`."""
    out: dict[str, list[str]] = defaultdict(list)
    for y in (year - 1, year):
        for code, events in q.changes_between(conn, year=y, after=after, upto=upto).items():
            for e in events:
                out[code if y == year else ""].append(_describe(e))
    for nid, kind, key, body in facts.insurance_fact_changes(conn, year, after, upto):
        code = key.split("|")[0] if kind in ("community_score", "enrolment_count") else ""
        out[code].append(f"#{nid} {FACTS_ZH.get(kind, kind)} {kind} {key}: {_brief(body)}")
    return dict(out)


EVENTS_ZH = {
    ("claim", "settled"): "结算记录导入",
    ("claim", "corrected"): "结算记录更正",
    ("claim", "voided"): "结算记录作废",
    ("enrolment", "recorded"): "参保登记导入",
    ("enrolment", "corrected"): "参保登记更正",
    ("enrolment", "voided"): "参保登记作废",
}


def _describe(e: dict[str, Any]) -> str:
    kind = str(e.get("kind", ""))
    label = EVENTS_ZH.get((str(e.get("record", "")), kind), "")
    parts = [f"#{e.get('notification_id', '?')}", f"{label} {kind}".strip(), str(e.get("ref", ""))]
    if "old_fen" in e or "new_fen" in e:
        old, new = e.get("old_fen"), e.get("new_fen")
        parts.append(
            f"{'—' if old is None else yuan_text(old)} → {'—' if new is None else yuan_text(new)}"
        )
    if e.get("reason"):
        parts.append(f"（{e['reason']}）")
    return " ".join(p for p in parts if p)


def _brief(body: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in body.items() if k not in ("actor",))


def run_json(run: inp.RunRecord, header: dict[str, Any]) -> dict[str, Any]:
    """A fund run as one JSON document (statements, `insurance show --json`, the API)."""
    results = run.results
    return {
        **header,
        "rule": results["rule"],
        "fund": results["figures"],
        "counts": results.get("counts", {}),
        "communities": results["communities"],
        "totals": results["totals"],
    }
