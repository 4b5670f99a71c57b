"""Performance pay inside an institution (机构内部绩效工资分配): the inputs and results.

What a distribution reads (`StaffInputs` per person, `InstitutionPool` for the institution,
`DistributionRules` for the readings a county chooses) and what it produces (`StaffShare` per
person, `Distribution` for the institution, with its check totals 分配核对).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dangliang.domain.errors import InvalidValue
from dangliang.policy.distribution_allocation import (
    FLOOR_FUNDING,
    MIN_REWARD_SHARE,
    NIL,
    SURPLUS_SHARE_RANGE,
    SURPLUS_WEIGHTS,
    FloorFunding,
    SurplusWeights,
    _refuse,
)
from dangliang.policy.trace import Step, to_json

# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class StaffInputs:
    """One person of the institution for the period (职工分配基础数据)."""

    staff_id: str
    name: str
    post: str  # a key of InstitutionPool.post_coefficients (e.g. medical, nursing, public_health)
    establishment: bool  # 在编 (True) / 编外 (False)
    equivalents: Decimal  # personal EU of the period (4 places)
    personal_coefficient: Decimal  # 个人考核系数
    months_in_post: int  # 在岗月数 within the period
    base_pay: Decimal  # the post's base amount for a full period: the base part's weight
    floor: Decimal | None = None  # 保底 for a full period (e.g. village doctor 32,000 a year)


@dataclass(frozen=True)
class InstitutionPool:
    """One institution's approved pool and the amounts distributed beside it."""

    code: str
    pool: Decimal  # 绩效工资总量 of the period, whole fen
    reward_share: Decimal  # 奖励性绩效占比, ≥ 0.60
    post_coefficients: Mapping[str, Decimal]  # 岗位系数 (configurable)
    outside_total: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    surplus: Decimal = NIL  # 收支结余（不含财政专项补助）; 0 when there is none
    surplus_share: Decimal | None = None  # 0.40–0.60; required when surplus > 0
    year_end_bonus_per_head: Decimal = NIL  # 年终绩效考核奖 per establishment head
    year_end_bonus_finance_per_head: Decimal = NIL  # of which paid by finance
    director_id: str | None = None  # 院长（主任）: annual salary outside the total
    months: int = 12  # length of the period in months


@dataclass(frozen=True)
class DistributionRules:
    """The readings a county chooses where the documents leave room (defaults: 诸暨方案 and
    docs/performance.md)."""

    min_reward_share: Decimal = MIN_REWARD_SHARE
    surplus_share_range: tuple[Decimal, Decimal] = SURPLUS_SHARE_RANGE
    prorate: bool = True
    floor_funding: FloorFunding = "from_pool"
    surplus_weights: SurplusWeights = "reward"
    director_year_end_bonus: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.floor_funding not in FLOOR_FUNDING:
            problems.append(
                (
                    f"保底资金来源 {self.floor_funding!r} 无效；可选：{', '.join(FLOOR_FUNDING)}",
                    f"floor_funding {self.floor_funding!r}: one of {', '.join(FLOOR_FUNDING)}",
                )
            )
        if self.surplus_weights not in SURPLUS_WEIGHTS:
            problems.append(
                (
                    f"结余分配权重 {self.surplus_weights!r} 无效；"
                    f"可选：{', '.join(SURPLUS_WEIGHTS)}",
                    f"surplus_weights {self.surplus_weights!r}: one of "
                    f"{', '.join(SURPLUS_WEIGHTS)}",
                )
            )
        _refuse(problems)

    def as_json(self) -> dict[str, Any]:
        return {
            "min_reward_share": str(self.min_reward_share),
            "surplus_share_range": [str(v) for v in self.surplus_share_range],
            "prorate": self.prorate,
            "floor_funding": self.floor_funding,
            "surplus_weights": self.surplus_weights,
            "director_year_end_bonus": self.director_year_end_bonus,
        }


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class StaffShare:
    """One person's lines of the distribution (a payslip's performance-pay part)."""

    staff_id: str
    name: str
    post: str
    establishment: bool
    director: bool
    months_share: Decimal
    weight: Decimal  # reward weight, shown to 6 places
    base: Decimal  # 基础性绩效
    reward: Decimal  # 奖励性绩效 (before floor funding)
    surplus: Decimal  # 结余再分配
    floor: Decimal | None  # the floor of the period (prorated when configured)
    floor_top_up: Decimal  # 保底补足
    floor_contribution: Decimal  # taken from the reward part to fund others' floors
    outside: Mapping[str, Decimal]  # 总量外项目
    year_end_bonus: Decimal  # 年终绩效考核奖
    year_end_bonus_finance: Decimal  # of which paid by finance

    @property
    def performance_pay(self) -> Decimal:
        """What the distribution pays: base + reward + surplus + top-up − contribution."""
        return self.base + self.reward + self.surplus + self.floor_top_up - self.floor_contribution

    @property
    def outside_amount(self) -> Decimal:
        return sum(self.outside.values(), NIL)

    @property
    def total(self) -> Decimal:
        return self.performance_pay + self.outside_amount + self.year_end_bonus

    def as_json(self) -> dict[str, Any]:
        return to_json(  # type: ignore[no-any-return]
            {
                "staff_id": self.staff_id,
                "name": self.name,
                "post": self.post,
                "establishment": self.establishment,
                "director": self.director,
                "months_share": self.months_share,
                "weight": self.weight,
                "base": self.base,
                "reward": self.reward,
                "surplus": self.surplus,
                "floor": self.floor,
                "floor_top_up": self.floor_top_up,
                "floor_contribution": self.floor_contribution,
                "performance_pay": self.performance_pay,
                "outside": dict(self.outside),
                "year_end_bonus": self.year_end_bonus,
                "year_end_bonus_finance": self.year_end_bonus_finance,
                "total": self.total,
            }
        )


@dataclass
class Distribution:
    """One institution's distribution for a period, with the steps that computed it."""

    code: str
    period: str
    rules: DistributionRules
    pool: Decimal
    base_pool: Decimal
    reward_pool: Decimal
    surplus_redistributed: Decimal
    staff: dict[str, StaffShare]  # in the order the staff were given
    steps: list[Step] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        """The institution's check totals (分配核对)."""
        return _totals(self)

    def explain(self, staff_id: str) -> list[dict[str, Any]]:
        """Every step as JSON, with this person's own entry under "staff" (from the trace)."""
        if staff_id not in self.staff:
            raise InvalidValue(f"本次分配中无职工 {staff_id}", f"no staff {staff_id} here")
        out = []
        for step in self.steps:
            data = step.as_json()
            mine = data["outputs"].pop("by_staff", {})
            data["staff"] = mine.get(staff_id)
            out.append(data)
        return out

    def as_json(self, *, with_steps: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "period": self.period,
            "rules": self.rules.as_json(),
            "staff": [s.as_json() for s in self.staff.values()],
            "totals": to_json(self.totals()),
        }
        if with_steps:
            out["steps"] = [s.as_json() for s in self.steps]
        return out


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, NIL)


def _totals(d: Distribution) -> dict[str, Any]:
    rows = list(d.staff.values())
    items = sorted({item for s in rows for item in s.outside})
    outside_top_up = (
        _sum(s.floor_top_up for s in rows) if d.rules.floor_funding == "outside" else NIL
    )
    bonus = _sum(s.year_end_bonus for s in rows)
    finance = _sum(s.year_end_bonus_finance for s in rows)
    return {
        "pool": d.pool,
        "base_pool": d.base_pool,
        "reward_pool": d.reward_pool,
        "surplus_redistributed": d.surplus_redistributed,
        "base": _sum(s.base for s in rows),
        "reward": _sum(s.reward for s in rows),
        "surplus": _sum(s.surplus for s in rows),
        "floor_top_up": _sum(s.floor_top_up for s in rows),
        "floor_contribution": _sum(s.floor_contribution for s in rows),
        "floor_top_up_outside": outside_top_up,
        "performance_pay": _sum(s.performance_pay for s in rows),
        "outside": {item: _sum(s.outside.get(item, NIL) for s in rows) for item in items},
        "outside_total": _sum(s.outside_amount for s in rows),
        "year_end_bonus": bonus,
        "year_end_bonus_finance": finance,
        "year_end_bonus_institution": bonus - finance,
        "total": _sum(s.total for s in rows),
    }
