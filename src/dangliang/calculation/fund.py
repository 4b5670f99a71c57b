"""The insurance fund's computation (医保基金测算): gather a year's inputs from the log as it
stood at a position, run the scheme's rule (`policy.insurance`), explain a community's figures
down to the enrolment, the claims and the parameter clauses, and compare a what-if.

Everything here is a function of (period, position): the same call at the same position gives
the same figures, which is what makes a replay meaningful years later.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from dangliang.calculation.compensation import policy_json
from dangliang.domain.errors import NotFound
from dangliang.domain.periods import Period
from dangliang.policy.insurance import compute as compute_fund
from dangliang.policy.insurance import reads_equivalents
from dangliang.policy.insurance_records import (
    CommunityInputs,
    FundInputs,
    FundResult,
    Member,
    yuan_text,
)
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.reform import Scenario
from dangliang.projections import facts_queries as inp
from dangliang.projections import insurance_inputs as facts
from dangliang.projections import insurance_queries as q
from dangliang.projections.equivalents import EquivalentsTables
from dangliang.projections.equivalents_queries import equivalents

SCHEME = "insurance"


class UnknownCommunity(NotFound):
    """A community code that is not registered."""


@dataclass
class InsuranceComputation:
    """A computed period of the fund and everything needed to reproduce it."""

    period: Period
    position: int
    policy: inp.PolicyInForce
    tree: ParameterTree
    fund: FundInputs
    result: FundResult

    @property
    def kind(self) -> str:
        return "insurance_settlement" if self.period.is_year else "insurance_advance"

    def as_json(self, *, with_steps: bool = False) -> dict[str, Any]:
        out = {
            "ledger": "insurance",
            "kind": self.kind,
            "position": self.position,
            "policy": policy_json(self.policy, self.tree),
            **self.result.as_json(),
        }
        if not with_steps:
            out.pop("steps")
            for c in out["communities"]:
                c.pop("steps")
        return out


# ---- gathering inputs -------------------------------------------------------------------------


def gather(
    conn: Connection,
    t: EquivalentsTables,
    year: int,
    position: int,
    *,
    with_equivalents: bool = True,
) -> FundInputs:
    """Every community's year as the log stood at `position`: enrolment month by month
    (people, plus monthly counts), claims by month, score, members with their equivalents;
    the fund's revenue and last year's spending (from last year's claims in the log, else
    as the bureau reported it). Without `with_equivalents` the members' equivalents are 0 and
    the cube is not read (the De Qing rule does not use them)."""
    communities = facts.communities_at(conn, position)
    scores = facts.scores_at(conn, year, position)
    fund_year = facts.fund_year_at(conn, year, position)
    enrolled = q.enrolled(conn, year, position)
    for code, cells in facts.enrolment_counts_at(conn, year, position).items():
        merged = dict(enrolled.get(code, {}))
        for key, n in cells.items():
            merged[key] = merged.get(key, 0) + n
        enrolled[code] = merged
    spending = q.spending(conn, year, position)
    prior = q.county_spending(conn, year - 1, position) or fund_year.prior_spending_fen
    institutions = inp.facts_for_year(conn, year, position)
    eus = _equivalents(conn, t, year, position) if with_equivalents else {}
    out = {}
    for code in sorted(communities):
        c = communities[code]
        centres = [m for m in c.members if m in institutions]
        clinics = sorted(i.code for i in institutions.values() if i.parent_code in centres)
        members = tuple(
            Member(m, institutions[m].name, level, eus.get(m, Decimal(0)))
            for level, codes in (("township", centres), ("village", clinics))
            for m in codes
        )
        out[code] = CommunityInputs(
            code=code,
            name=c.name,
            lead_hospital_code=c.lead_hospital_code,
            lead_hospital_name=c.lead_hospital_name,
            members=members,
            score=scores.get(code),
            enrolled=enrolled.get(code, {}),
            spending=spending.get(code, {}),
        )
    return FundInputs(year, fund_year.revenue_fen, prior, out)


def _equivalents(
    conn: Connection, t: EquivalentsTables, year: int, position: int
) -> dict[str, Decimal]:
    """Each institution's equivalents of the year (basic medical + compliant public health):
    what the Zhijiang surplus is shared by."""
    found = equivalents(conn, t, str(year), position=position)
    return {
        row["code"]: Decimal(row["basic_medical"]) + Decimal(row["basic_public_health"])
        for row in found["institutions"]
    }


def compute(
    conn: Connection,
    t: EquivalentsTables,
    period: Period,
    position: int,
    *,
    tree: ParameterTree | None = None,
) -> InsuranceComputation:
    policy = inp.policy_at(conn, position, scheme=SCHEME)
    fund = gather(
        conn, t, period.year, position, with_equivalents=reads_equivalents(policy.tree, period.year)
    )
    return run(period, position, policy, fund, tree=tree)


def run(
    period: Period,
    position: int,
    policy: inp.PolicyInForce,
    fund: FundInputs,
    *,
    tree: ParameterTree | None = None,
) -> InsuranceComputation:
    used = tree or policy.tree
    return InsuranceComputation(
        period, position, policy, used, fund, compute_fund(used, fund, period)
    )


# ---- explain ----------------------------------------------------------------------------------


def explain(
    conn: Connection,
    computation: InsuranceComputation,
    community: str,
    *,
    records: int = 0,
) -> dict[str, Any]:
    """A community's figures with the rule steps that made them (parameters and clauses), the
    enrolment and spending they read month by month, and — with `records` — the first claims
    and enrolment rows behind them (the full lists: `dangliang insurance records`)."""
    found = computation.result.communities.get(community)
    inputs = computation.fund.communities.get(community)
    if found is None or inputs is None:
        raise UnknownCommunity(f"未登记的医共体：{community}", f"unknown community: {community}")
    period, position = computation.period, computation.position
    enrolled: dict[str, dict[str, int]] = defaultdict(dict)
    for (m, insurance_type, band), n in sorted(inputs.enrolled.items()):
        enrolled[f"{period.year}-{m:02d}"][f"{insurance_type}.{band}"] = n
    spent: dict[str, dict[str, str]] = defaultdict(dict)
    for (m, out_of_area), fen in sorted(inputs.spending.items()):
        spent[f"{period.year}-{m:02d}"]["out_of_area" if out_of_area else "in_area"] = yuan_text(
            fen
        )
    out: dict[str, Any] = {
        "community": community,
        "name": found.name,
        "period": period.label,
        "rule": computation.result.rule,
        "position": position,
        "policy": policy_json(computation.policy, computation.tree),
        "figures": found.figures_json(),
        "score": None if inputs.score is None else str(inputs.score),
        "allocation": found.allocation_json(),
        "steps": [s.as_json() for s in computation.result.steps + found.steps],
        "enrolled_by_month": dict(enrolled),
        "spending_by_month": dict(spent),
        "records_command": (
            f"dangliang insurance records --community {community} --year {period.year} "
            f"--position {position}"
        ),
    }
    if records:
        out["claims"] = q.claims_in(
            conn, community=community, year=period.year, position=position, limit=records
        )
        out["enrolments"] = q.enrolments_in(
            conn, community=community, year=period.year, position=position, limit=records
        )
    return out


# ---- what-if ----------------------------------------------------------------------------------

COMPARED = ("budget", "spending", "balance", "advance", "final")


def difference(
    baseline: InsuranceComputation, reform: InsuranceComputation, scenario: Scenario
) -> dict[str, Any]:
    """The scenario beside the baseline, per community and for the fund (yuan, with deltas)."""

    def side_by_side(a: dict[str, int], b: dict[str, int]) -> dict[str, Any]:
        return {
            key: {
                "baseline": yuan_text(a[key]),
                "scenario": yuan_text(b[key]),
                "difference": yuan_text(b[key] - a[key]),
            }
            for key in sorted(set(a) & set(b))
            if key in COMPARED or a[key] != b[key]
        }

    return {
        "period": baseline.period.label,
        "position": baseline.position,
        "scenario": scenario.description,
        "changes": [
            {"path": c.path, "value": str(c.value), "from": c.start.isoformat()}
            for c in scenario.changes
        ],
        "fund": side_by_side(baseline.result.figures, reform.result.figures),
        "communities": [
            {
                "code": code,
                "name": c.name,
                "figures": side_by_side(c.figures, reform.result.communities[code].figures),
            }
            for code, c in sorted(baseline.result.communities.items())
        ],
        "nothing_written": True,
    }
