"""Load the inputs of performance pay inside an institution (docs/performance.md): approved pools
(绩效工资总量), personal assessment coefficients (个人考核系数) and the amounts paid outside the
pool (绩效总量外项目).

The same rules as the other input loaders (`input_files.py`), whose helpers this module
reuses: each file is validated whole and every problem is collected with its file, row and
column; each row is then applied to its aggregate in memory, where the domain's own rules may
still refuse it; only when nothing was refused are all the new events saved in one
transaction. Loading the same file again records nothing.

Formats: `formats.py` (POOLS, STAFF_COEFFICIENTS, OUTSIDE_ITEMS), documented for people in
`docs/formats.md`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain import ids
from dangliang.domain.inputs import StaffYear
from dangliang.domain.policy import CountyPolicy
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.fields import Code, Coefficient, OutsideKind, Ratio, Text, Year, Yuan
from dangliang.importers.formats import OUTSIDE_ITEMS, POOLS, STAFF_COEFFICIENTS
from dangliang.importers.input_files import NO_POLICY, institution_year
from dangliang.importers.reference import (
    LoadResult,
    Session,
    apply,
    read,
    unknown_institutions,
)
from dangliang.ledger.eventlog import EventLog
from dangliang.policy.parameter_values import ParameterLookupError
from dangliang.policy.parameters import ParameterTree
from dangliang.projections.registry import Registry

__all__ = [
    "load_outside_items",
    "load_pools",
    "load_staff_coefficients",
]


class PoolRow(TypedDict):
    institution_code: Code
    year: Year
    pool: Yuan
    reward_share: Ratio
    surplus: Yuan | None
    surplus_share: Ratio | None
    director_staff_id: Code | None
    reference: Text


class StaffCoefficientRow(TypedDict):
    staff_id: Code
    year: Year
    coefficient: Coefficient
    reference: Text


class OutsideItemRow(TypedDict):
    staff_id: Code
    year: Year
    kind: OutsideKind
    amount: Yuan
    reference: Text


# ---- performance pay inside an institution (docs/performance.md) ---------------------------------

ZHUJI_REWARD_SHARE = "诸暨方案 二(四)2「奖励性绩效工资占比绩效总额不低于60%」"
ZHUJI_SURPLUS_SHARE = (
    "诸暨方案 二(四)2「允许将基层医疗卫生机构收支结余（不含财政专项补助）的40%—60%"
    "根据综合考核结果进行再分配」"
)


def _pool_problems(name: str, row_number: int, r: PoolRow, tree: ParameterTree) -> list[Problem]:
    """The policy limits in force on 1 January of the row's year, and the surplus pairing."""
    problems: list[Problem] = []
    on = date(r["year"], 1, 1)

    def limit(path: str) -> Decimal | None:
        try:
            return tree.get(path, on=on).as_decimal()
        except ParameterLookupError as e:
            problems.append(Problem(name, row_number, "year", e.message_zh, e.message_en))
            return None

    minimum = limit("performance_pay.min_reward_share")
    share = r["reward_share"]
    if minimum is not None and share < minimum:
        problems.append(
            Problem(
                name,
                row_number,
                "reward_share",
                f"奖励性绩效占比 {share} 低于 {r['year']} 年生效的下限 {minimum}"
                f"（performance_pay.min_reward_share）：{ZHUJI_REWARD_SHARE}",
                f"reward share {share} is below the minimum {minimum} in force for "
                f"{r['year']} (performance_pay.min_reward_share): 诸暨方案 二(四)2 requires "
                "the reward part to be at least 60% of the performance-pay total "
                "(「奖励性绩效工资占比绩效总额不低于60%」)",
            )
        )
    surplus, surplus_share = r["surplus"], r["surplus_share"]
    if surplus is not None and surplus_share is None:
        problems.append(
            Problem(
                name,
                row_number,
                "surplus_share",
                "给出了收支结余，必须同时给出结余再分配比例",
                "required when a surplus is given",
            )
        )
    elif surplus is None and surplus_share is not None:
        problems.append(
            Problem(
                name,
                row_number,
                "surplus",
                "给出了结余再分配比例，必须同时给出收支结余",
                "required when a surplus share is given",
            )
        )
    elif surplus_share is not None:
        low = limit("performance_pay.surplus_share_min")
        high = limit("performance_pay.surplus_share_max")
        if low is not None and high is not None and not low <= surplus_share <= high:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "surplus_share",
                    f"结余再分配比例 {surplus_share} 不在 {r['year']} 年生效的 {low}—{high} "
                    f"之间（performance_pay.surplus_share_min/max）：{ZHUJI_SURPLUS_SHARE}",
                    f"surplus share {surplus_share} is outside {low}–{high} in force for "
                    f"{r['year']} (performance_pay.surplus_share_min/max): 诸暨方案 二(四)2 "
                    "allows 40%–60% of the surplus (without special finance subsidies) to be "
                    "redistributed by assessment",
                )
            )
    return problems


def load_pools(
    log: EventLog, registry: Registry, tree: ParameterTree, path: Path, actor: str
) -> LoadResult:
    """绩效工资总量: each institution's approved performance-pay total for a year, its reward
    share, optionally its surplus and the share redistributed, and its director (paid outside
    the pool). `tree` is the policy in force: it gives the minimum reward share and the
    allowed surplus shares."""
    policy: CountyPolicy | None = Session(log).get(ids.county_policy_id())
    if policy is None or policy.digest is None:
        raise ProblemsFound([Problem(str(path), None, None, *NO_POLICY)])
    name, rows, problems = read(path, POOLS, TypeAdapter(list[PoolRow]))
    problems.extend(unknown_institutions(name, rows, registry))
    for row_number, r in rows:
        problems.extend(_pool_problems(name, row_number, r, tree))
        director = r["director_staff_id"]
        if director is not None and director not in registry.staff_names:
            problems.append(
                Problem.unknown(
                    name, row_number, "director_staff_id", "人员编号", "staff id", director
                )
            )

    def apply_row(session: Session, r: PoolRow) -> bool:
        year, opened = institution_year(session, r["institution_code"], r["year"], actor)
        approved = year.approve_pool(
            pool=r["pool"], reward_share=r["reward_share"], reference=r["reference"], actor=actor
        )
        reported = False
        if r["surplus"] is not None and r["surplus_share"] is not None:
            reported = year.report_surplus(
                surplus=r["surplus"], share=r["surplus_share"], actor=actor
            )
        named = r["director_staff_id"] is not None and year.name_director(
            staff_id=r["director_staff_id"], actor=actor
        )
        return opened or approved or reported or named

    return apply(log, name, rows, problems, apply_row, "pool")


def _staff_year(session: Session, staff_id: str, year: int, actor: str) -> tuple[StaffYear, bool]:
    """The staff member's aggregate for the year, opened when it does not exist yet."""
    found: StaffYear | None = session.get(ids.staff_year_id(staff_id, year))
    if found is not None:
        return found, False
    opened = StaffYear.open(staff_id=staff_id, year=year, actor=actor)
    session.add(opened)
    return opened, True


def _unknown_staff(name: str, rows: list[tuple[int, Any]], registry: Registry) -> list[Problem]:
    return [
        Problem.unknown(name, n, "staff_id", "人员编号", "staff id", r["staff_id"])
        for n, r in rows
        if r["staff_id"] not in registry.staff_names
    ]


def load_staff_coefficients(
    log: EventLog, registry: Registry, path: Path, actor: str
) -> LoadResult:
    """个人考核系数: each staff member's personal assessment coefficient (0–5) for a year."""
    name, rows, problems = read(path, STAFF_COEFFICIENTS, TypeAdapter(list[StaffCoefficientRow]))
    problems.extend(_unknown_staff(name, rows, registry))

    def apply_row(session: Session, r: StaffCoefficientRow) -> bool:
        year, opened = _staff_year(session, r["staff_id"], r["year"], actor)
        assessed = year.assess(coefficient=r["coefficient"], reference=r["reference"], actor=actor)
        return opened or assessed

    return apply(log, name, rows, problems, apply_row, "coefficient")


def load_outside_items(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    """绩效总量外项目: amounts paid to a staff member outside the performance-pay total
    (家庭医生签约服务费, 公卫医生防疫补贴), one per staff member, year and kind."""
    name, rows, problems = read(path, OUTSIDE_ITEMS, TypeAdapter(list[OutsideItemRow]))
    problems.extend(_unknown_staff(name, rows, registry))

    def apply_row(session: Session, r: OutsideItemRow) -> bool:
        year, opened = _staff_year(session, r["staff_id"], r["year"], actor)
        recorded = year.record_outside_item(
            kind=r["kind"], amount=r["amount"], reference=r["reference"], actor=actor
        )
        return opened or recorded

    return apply(log, name, rows, problems, apply_row, "amount")
