"""Closed periods (已结算期间) and what was paid for them: the periods closed by approved payout
runs, the advances and adjustments those runs paid, and a period's inputs with a settlement's
advances taken from what the year's runs paid (used by `runs` and `run_adjustments`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from dangliang.calculation import compensation as comp
from dangliang.domain.periods import Period
from dangliang.policy.subsidy_records import ZERO
from dangliang.projections import facts_queries as inp
from dangliang.projections.equivalents import EquivalentsTables


@dataclass(frozen=True)
class ClosedPeriod:
    period: Period
    run: inp.RunRecord

    @property
    def label(self) -> str:
        return self.period.label


# ---- what was paid ----------------------------------------------------------------------------


def closed_periods(runs: Mapping[str, inp.RunRecord]) -> dict[str, ClosedPeriod]:
    return {
        r.period: ClosedPeriod(Period.of(r.period), r) for r in runs.values() if r.closes_period
    }


def lines_paid(runs: Mapping[str, inp.RunRecord], label: str, code: str) -> Decimal:
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


def gather(
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


def _amount(row: Mapping[str, Any], period: Period) -> Decimal:
    """What a period's run decides for an institution: a month's advance, a year's total."""
    return Decimal(row["advances"] if period.month else row["total"])
