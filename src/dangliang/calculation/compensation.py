"""Compute, explain and what-if for institution compensation, on the log as it stands at a
position: gathers the inputs from the read models and runs the rule steps of
`dangliang.policy.subsidy` (which know nothing about storage).

- `compute`: a month's advances or a year's settlement, with the policy that was used (bundle,
  digest of the parameters in force, changes since adoption) and the log position, so that the
  same call with the same position gives the same numbers, to the fen, for ever.
- `explain`: one institution's trace — rule → parameters (value, start date, reference) →
  equivalents by item and month → record counts and the command that lists the records.
- `what_if`: the same computation with a modified copy of the parameters, beside the baseline;
  nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from dangliang.domain.errors import DomainError, NotFound
from dangliang.domain.periods import Period
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import value_to_canonical
from dangliang.policy.reform import Change, Scenario, load_scenario, scenario_from_sets
from dangliang.policy.subsidy import compute_month, compute_year
from dangliang.policy.subsidy_records import (
    CATEGORIES,
    COMPONENTS,
    EU_QUANTUM,
    CountyInputs,
    CountyResult,
    InstitutionInputs,
)
from dangliang.projections import facts_queries as inp
from dangliang.projections.equivalents import EquivalentsTables
from dangliang.projections.equivalents_queries import cells

E8 = Decimal(10**8)

# Which rule steps explain which component (and the county-wide pricing steps with them).
_COMPONENT_RULES: Mapping[str, tuple[str, ...]] = {
    "basic_medical": ("equivalents", "growth_cap", "force_majeure", "coefficient", "basic_medical"),
    "basic_public_health": (
        "equivalents",
        "force_majeure",
        "coefficient",
        "basic_public_health",
    ),
    "directive_tasks": ("directive_tasks",),
    "remote_adjustment": ("coefficient", "remote_adjustment"),
    "year_end_bonus": ("year_end_bonus",),
    "settlement": ("settlement",),
}
EXPLAINABLE = tuple(_COMPONENT_RULES)


class UnknownInstitution(NotFound):
    """An institution code that is not registered."""


@dataclass
class Computation:
    """A computed period and everything needed to reproduce it."""

    period: Period
    position: int
    policy: inp.PolicyInForce
    tree: ParameterTree  # the parameters used (the policy's, or a scenario's)
    result: CountyResult

    def as_json(self, *, with_steps: bool = False) -> dict[str, Any]:
        return {
            "period": self.period.label,
            "kind": "annual_settlement" if self.period.month is None else "monthly_advance",
            "position": self.position,
            "policy": policy_json(self.policy, self.tree),
            **self.result.as_json(with_steps=with_steps),
        }


def policy_json(policy: inp.PolicyInForce, tree: ParameterTree) -> dict[str, Any]:
    return {
        "bundle": policy.bundle_name,
        "adopted_digest": policy.digest,
        "adoption_reference": policy.reference,
        "adopted_at_position": policy.adopted_at,
        "changes_since": [
            {k: c[k] for k in ("path", "start", "value_json", "reason", "approver")}
            for c in policy.changes
        ],
        "parameters_digest": tree.digest(),
    }


# ---- gathering inputs -------------------------------------------------------------------------


def gather(
    conn: Connection, t: EquivalentsTables, period: Period, position: int
) -> tuple[inp.PolicyInForce, CountyInputs]:
    """The policy and every institution's inputs for the period's year, as at `position`:
    equivalents of the period's months and the same months a year earlier."""
    year = period.year
    policy = inp.policy_at(conn, position)
    facts = inp.facts_for_year(conn, year, position)
    wanted = range(1, 13) if period.month is None else (period.month,)
    months = [f"{y}-{m:02d}" for y in (year - 1, year) for m in wanted]
    this: dict[str, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    last: dict[str, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for cell in cells(conn, t, months, position=position):
        key = cell.category
        if key == "basic_public_health" and not cell.compliant:
            key = "non_compliant"
        target = this if int(cell.month[:4]) == year else last
        by_month = target[cell.institution][key]
        m = int(cell.month[5:7])
        by_month[m] = by_month.get(m, 0) + cell.equivalents_e8
    institutions = {}
    for code in sorted(set(facts) | set(this)):
        f = facts.get(code) or inp.InstitutionFacts(code)
        institutions[code] = InstitutionInputs(
            code=code,
            name=f.name,
            remote=f.remote,
            headcount=f.headcount,
            score=f.score,
            score_reference=f.score_reference,
            income=f.income,
            pay_level=f.pay_level,
            tasks=tuple(f.tasks[k] for k in sorted(f.tasks)),
            equivalents={c: _eu(this[code][c]) for c in CATEGORIES},
            previous={c: _eu(last[code][c]) for c in CATEGORIES},
            non_compliant=_eu(this[code]["non_compliant"]),
            force_majeure=frozenset(f.force_majeure),
        )
    return policy, CountyInputs(year, institutions)


def _eu(by_month: Mapping[int, int]) -> dict[int, Decimal]:
    """Exact × 10^8 sums → Decimal equivalents (the pipeline rounds each month to 4 places)."""
    return {m: Decimal(v) / E8 for m, v in by_month.items()}


def compute(
    conn: Connection,
    t: EquivalentsTables,
    period: Period,
    position: int,
    *,
    tree: ParameterTree | None = None,
) -> Computation:
    policy, county = gather(conn, t, period, position)
    return run(period, position, policy, county, tree=tree)


def run(
    period: Period,
    position: int,
    policy: inp.PolicyInForce,
    county: CountyInputs,
    *,
    tree: ParameterTree | None = None,
) -> Computation:
    """The rule steps on gathered inputs, with the policy's parameters or `tree`."""
    used = tree or policy.tree
    result = (
        compute_year(used, county)
        if period.month is None
        else compute_month(used, county, period.month)
    )
    return Computation(period, position, policy, used, result)


# ---- explain ----------------------------------------------------------------------------------


def explain(
    conn: Connection,
    t: EquivalentsTables,
    computation: Computation,
    institution: str,
    component: str | None = None,
) -> dict[str, Any]:
    """The trace of one institution's amount: rules, parameters, equivalents, records."""
    found = computation.result.institutions.get(institution)
    if found is None:
        raise UnknownInstitution(
            f"未登记的机构：{institution}", f"unknown institution: {institution}"
        )
    if component is not None and component not in _COMPONENT_RULES:
        raise DomainError(
            f"未知的组成部分：{component}；可选：{', '.join(EXPLAINABLE)}",
            f"unknown component {component!r}; one of: {', '.join(EXPLAINABLE)}",
        )
    rules = _COMPONENT_RULES.get(component or "", None)
    steps = [s for s in found.steps if rules is None or s.rule.name in rules]
    county_steps = [
        s
        for s in computation.result.steps
        if component in (None, "basic_medical", "basic_public_health")
    ]
    period = computation.period
    months = (
        [f"{period.year}-{m:02d}" for m in range(1, 13)] if period.month is None else [period.label]
    )
    items = _items_by_month(conn, t, institution, months, computation.position, component)
    amount = (
        found.total
        if component is None
        else found.settlement
        if component == "settlement"
        else found.components[component]
    )
    listing = (
        f"dangliang records --institution {institution} --period {period.label} "
        f"--position {computation.position}"
    )
    return {
        "institution": institution,
        "name": found.name,
        "period": period.label,
        "component": component,
        "amount": str(amount),
        "position": computation.position,
        "policy": policy_json(computation.policy, computation.tree),
        "result": found.as_json(),
        "steps": [s.as_json() for s in county_steps + steps],
        "equivalents_by_item": items,
        "records": {
            c: sum(i["records"] for i in items if i["category"] == c)
            for c in {i["category"] for i in items}
        },
        "records_command": listing,
    }


def _items_by_month(
    conn: Connection,
    t: EquivalentsTables,
    institution: str,
    months: Sequence[str],
    position: int,
    component: str | None,
) -> list[dict[str, Any]]:
    wanted = {
        None: set(CATEGORIES),
        "basic_medical": {"basic_medical"},
        "basic_public_health": {"basic_public_health"},
        "settlement": set(CATEGORIES),
    }.get(component, set())
    rows = [
        {
            "item": c.item,
            "category": c.category,
            "month": c.month,
            "compliant": c.compliant,
            "quantity": str(Decimal(c.quantity_e4).scaleb(-4)),
            "equivalent_value": str(Decimal(c.value_e4).scaleb(-4)),
            "equivalents": str(Decimal(c.equivalents_e8).scaleb(-8).quantize(EU_QUANTUM)),
            "records": c.records,
        }
        for c in cells(conn, t, months, position=position, institution=institution)
        if c.category in wanted
    ]
    rows.sort(key=lambda r: (r["category"], r["item"], r["month"], not r["compliant"]))
    return rows


# ---- what-if ----------------------------------------------------------------------------------


def difference(baseline: Computation, reform: Computation, scenario: Scenario) -> dict[str, Any]:
    """Per institution: baseline, scenario and their difference, by component and in total."""
    rows = []
    for code, base in baseline.result.institutions.items():
        new = reform.result.institutions[code]
        rows.append(
            {
                "code": code,
                "name": base.name,
                "baseline": str(base.total),
                "scenario": str(new.total),
                "difference": str(new.total - base.total),
                "components": {c: str(new.components[c] - base.components[c]) for c in COMPONENTS},
                "settlement_difference": str(new.settlement - base.settlement),
                "advances_difference": str(new.advances - base.advances),
            }
        )
    return {
        "period": baseline.period.label,
        "position": baseline.position,
        "scenario": {
            "description": scenario.description,
            "changes": [
                {
                    "path": c.path,
                    "value": value_to_canonical(c.value),
                    "from": c.start.isoformat(),
                    "until": c.until.isoformat() if c.until else None,
                }
                for c in scenario.changes
            ],
            "parameters_digest": reform.tree.digest(),
        },
        "baseline_parameters_digest": baseline.tree.digest(),
        "institutions": rows,
        "totals": {
            "baseline": str(baseline.result.total),
            "scenario": str(reform.result.total),
            "difference": str(reform.result.total - baseline.result.total),
        },
        "written": False,
    }


__all__ = [
    "Change",
    "Computation",
    "Period",
    "Scenario",
    "compute",
    "difference",
    "explain",
    "load_scenario",
    "scenario_from_sets",
]
