"""Performance pay inside institutions (绩效工资分配), on the log as it stood at a position:
gathers each institution's pool and its staff's equivalents, coefficients, months in post and
items outside the total, reads the performance-pay parameters of the policy, and runs the pure
distribution of `dangliang.policy.distribution` (docs/performance.md).

Readings (documented in docs/performance.md when this grows into distribution runs):
- a staff member belongs to an institution's distribution for the months of the period in
  which a posting there covers at least one day; post and establishment are those of the
  latest such posting;
- personal equivalents are the period's basic-medical and compliant public-health
  equivalents recorded for that person at that institution;
- a person without a recorded coefficient counts with 1.00, with a warning;
- a month's provisional distribution shares a twelfth of the year's pool.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.domain.values import first_of_next_month
from dangliang.policy.distribution import distribute
from dangliang.policy.distribution_records import (
    Distribution,
    DistributionRules,
    InstitutionPool,
    StaffInputs,
)
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.subsidy_records import yuan
from dangliang.projections import facts_queries as inp
from dangliang.projections import registry as reg
from dangliang.projections.equivalents import EquivalentsTables
from dangliang.projections.equivalents_queries import cells

E8 = Decimal(10**8)
ONE = Decimal(1)
POSTS = (
    "clinical",
    "nursing",
    "public_health",
    "medical_tech",
    "pharmacy",
    "admin",
    "it",
    "village_doctor",
)


@dataclass
class PerformanceResult:
    period: str
    position: int
    distributions: dict[str, Distribution]
    warnings: list[str] = field(default_factory=list)

    def as_json(self, *, with_steps: bool = False) -> dict[str, Any]:
        return {
            "period": self.period,
            "position": self.position,
            "institutions": [
                d.as_json(with_steps=with_steps) for _, d in sorted(self.distributions.items())
            ],
            "warnings": self.warnings,
        }


def rules_from(tree: ParameterTree, year: int) -> DistributionRules:
    jan1 = date(year, 1, 1)
    return DistributionRules(
        min_reward_share=tree.get("performance_pay.min_reward_share", jan1).as_decimal(),
        surplus_share_range=(
            tree.get("performance_pay.surplus_share_min", jan1).as_decimal(),
            tree.get("performance_pay.surplus_share_max", jan1).as_decimal(),
        ),
        prorate=tree.get("performance_pay.prorate", jan1).as_bool(),
        floor_funding=tree.get("performance_pay.floor_funding", jan1).as_text(),  # type: ignore[arg-type]
    )


def compute(
    conn: Connection,
    t: EquivalentsTables,
    period: Period,
    position: int,
    *,
    institution: str | None = None,
) -> PerformanceResult:
    """Every institution's distribution (or one's) for a year, or a month's provisional one."""
    year = period.year
    tree = inp.policy_at(conn, position).tree
    staff, pools = inp.performance_facts(conn, year, position)
    rules = rules_from(tree, year)
    months = period.months
    labels = [f"{year}-{m:02d}" for m in months]
    equivalents: dict[tuple[str, str], int] = defaultdict(int)
    for cell in cells(conn, t, labels, position=position, institution=institution, by_staff=True):
        if cell.category == "basic_medical" or cell.compliant:
            equivalents[(cell.institution, cell.staff or "")] += cell.equivalents_e8
    result = PerformanceResult(period.label, position, {})
    for code, pool in sorted(pools.items()):
        if institution and code != institution:
            continue
        if pool.pool is None or pool.reward_share is None:
            result.warnings.append(f"{code}: 未核定绩效工资总量 / no approved pool")
            continue
        members = _members(code, staff, year, months, tree, equivalents, result.warnings)
        share = Decimal(len(months)) / Decimal(12)
        result.distributions[code] = distribute(
            InstitutionPool(
                code=code,
                pool=yuan(pool.pool * share),  # a month: a twelfth, to the fen
                reward_share=pool.reward_share,
                post_coefficients={
                    p: tree.get(
                        f"performance_pay.post_coefficient.{p}", date(year, 1, 1)
                    ).as_decimal()
                    for p in POSTS
                },
                outside_total={
                    s.staff_id: dict(staff[s.staff_id].outside)
                    for s in members
                    if staff[s.staff_id].outside
                },
                surplus=yuan(pool.surplus * share)
                if pool.surplus_share is not None
                else Decimal(0),
                surplus_share=pool.surplus_share,
                year_end_bonus_per_head=_bonus(tree, year, "per_head")
                if period.month is None
                else Decimal(0),
                year_end_bonus_finance_per_head=_bonus(tree, year, "finance_share_per_head")
                if period.month is None
                else Decimal(0),
                director_id=pool.director,
                months=len(months),
            ),
            members,
            period=period.label,
            rules=rules,
        )
    return result


def _bonus(tree: ParameterTree, year: int, name: str) -> Decimal:
    return tree.get(f"year_end_bonus.{name}", date(year, 1, 1)).optional_decimal() or Decimal(0)


def _members(
    code: str,
    staff: dict[str, inp.StaffFacts],
    year: int,
    months: list[int],
    tree: ParameterTree,
    equivalents: dict[tuple[str, str], int],
    warnings: list[str],
) -> list[StaffInputs]:
    jan1 = date(year, 1, 1)
    out = []
    for staff_id, person in sorted(staff.items()):
        if all(p["institution_code"] != code for p in person.postings):
            continue  # never posted here: no month to look at (the county has ~600 staff)
        in_post = [m for m in months if _posted(person, code, year, m)]
        if not in_post:
            continue
        posting = _latest_posting(person, code, year, in_post[-1])
        if person.coefficient is None:
            warnings.append(
                f"{code}/{staff_id}: 个人考核系数未录入，按 1.00 / no coefficient: 1.00"
            )
        post = posting["post"]
        floor = (
            tree.get("performance_pay.village_doctor_floor", jan1).optional_decimal()
            if post == "village_doctor"
            else None
        )
        out.append(
            StaffInputs(
                staff_id=staff_id,
                name=person.name,
                post=post,
                establishment=posting["establishment"] == "on",
                equivalents=(Decimal(equivalents.get((code, staff_id), 0)) / E8).quantize(
                    Decimal("0.0001")
                ),
                personal_coefficient=person.coefficient if person.coefficient is not None else ONE,
                months_in_post=len(in_post),
                # A month's (or the year's) share of an annual amount, to the fen.
                base_pay=yuan(
                    tree.get(f"performance_pay.base_pay.{post}", jan1).as_decimal()
                    * Decimal(len(months))
                    / Decimal(12)
                ),
                floor=yuan(floor * Decimal(len(months)) / Decimal(12))
                if floor is not None
                else None,
            )
        )
    return out


def _posted(person: inp.StaffFacts, code: str, year: int, month: int) -> bool:
    """Whether a posting at `code` covers at least one day of the month."""
    first = date(year, month, 1)
    last = first_of_next_month(year, month)
    for p in person.postings:
        start = date.fromisoformat(p["from_date"])
        end = date.fromisoformat(p["to_date"]) if p["to_date"] else None
        if p["institution_code"] == code and start < last and (end is None or end >= first):
            return True
    return False


def _latest_posting(person: inp.StaffFacts, code: str, year: int, month: int) -> dict[str, Any]:
    candidates = [
        p
        for p in person.postings
        if p["institution_code"] == code
        and date.fromisoformat(p["from_date"]) < first_of_next_month(year, month)
    ]
    if not candidates:
        raise DomainError(
            f"{person.staff_id} 在 {code} 无任职记录", f"{person.staff_id} has no posting at {code}"
        )
    return candidates[-1]


def compute_run(
    conn: Connection, t: EquivalentsTables, period: Period, position: int
) -> dict[str, Any]:
    """What a distribution run of `period` at `position` records (deterministic JSON): every
    institution's distribution; for a year, each person's final pay beside what the approved
    monthly (provisional) runs paid, and the difference to pay or recover."""
    policy = inp.policy_at(conn, position)
    found = compute(conn, t, period, position)
    out = found.as_json()
    if period.month is None:
        paid = provisional_paid(inp.runs_at(conn, position), period.year)
        for institution in out["institutions"]:
            for person in institution["staff"]:
                already = paid.get((institution["code"], person["staff_id"]), Decimal(0))
                person["provisional_paid"] = str(already)
                person["difference"] = str(Decimal(person["performance_pay"]) - already)
    out["kind"] = "performance_pay"
    out["policy"] = {
        "bundle": policy.bundle_name,
        "parameters_digest": policy.tree.digest(),
    }
    out["totals"] = {
        key: str(sum((Decimal(i["totals"][key]) for i in out["institutions"]), Decimal(0)))
        for key in ("pool", "performance_pay", "outside_total", "year_end_bonus", "total")
    }
    return out


def provisional_paid(runs: dict[str, inp.RunRecord], year: int) -> dict[tuple[str, str], Decimal]:
    """Per (institution, staff): performance pay of the year's approved monthly runs."""
    paid: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for run in runs.values():
        label = run.period.removeprefix("perf-")
        if run.ledger != "performance" or not run.closes_period or len(label) != 7:
            continue
        if label[:4] != str(year):
            continue
        for institution in run.results["institutions"]:
            for person in institution["staff"]:
                paid[(institution["code"], person["staff_id"])] += Decimal(
                    person["performance_pay"]
                )
    return dict(paid)


def staff_equivalents(
    conn: Connection,
    t: EquivalentsTables,
    code: str,
    period: Period,
    position: int,
    *,
    staff: str | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Per staff member of an institution (or only `staff`): equivalents by item and month
    (what a payslip and `explain --staff` show; basic medical and compliant public health,
    as distributed)."""
    names = {c: n for c, n in conn.execute(select(reg.items.c.item_code, reg.items.c.name))}
    labels = [f"{period.year}-{m:02d}" for m in period.months]
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    found = cells(conn, t, labels, position=position, institution=code, by_staff=True, staff=staff)
    for cell in found:
        if cell.category != "basic_medical" and not cell.compliant:
            continue
        out[cell.staff or ""].append(
            {
                "item": cell.item,
                "name": names.get(cell.item, ""),
                "month": cell.month,
                "quantity": str(Decimal(cell.quantity_e4).scaleb(-4)),
                "equivalent_value": str(Decimal(cell.value_e4).scaleb(-4)),
                "equivalents": str((Decimal(cell.equivalents_e8) / E8).quantize(Decimal("0.0001"))),
            }
        )
    for rows in out.values():
        rows.sort(key=lambda r: (r["item"], r["month"]))
    return dict(out)
