"""Institution compensation (机构补偿): the constants, inputs and results of the rule steps.

The categories, money components (with their Chinese names) and the rule table of
docs/compensation.md; rounding to the fen and to 4-place equivalents; what the steps read
about an institution for a year (`InstitutionInputs`, `CountyInputs`) and what they produce
(`InstitutionResult`, `CountyResult`). The steps themselves are in `policy.subsidy_pricing`
(steps 1–4) and `policy.subsidy_amounts` (steps 5–10); the pipeline is `policy.subsidy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dangliang.policy.trace import Rule, Step, to_json

CATEGORIES = ("basic_medical", "basic_public_health")
MONTHS = tuple(range(1, 13))
ZERO = Decimal(0)
ONE = Decimal(1)
FEN = Decimal("0.01")
EU_QUANTUM = Decimal("0.0001")
POINT_VALUE_QUANTUM = Decimal("0.000001")

COMPONENTS = (
    "basic_medical",
    "basic_public_health",
    "directive_tasks",
    "remote_adjustment",
    "year_end_bonus",
)
"""The money components of an institution's annual amount, in the order they are shown."""

COMPONENTS_ZH = {
    "basic_medical": "基本医疗",
    "basic_public_health": "基本公共卫生",
    "directive_tasks": "指令性任务",
    "remote_adjustment": "边缘乡镇调节补助",
    "year_end_bonus": "年终考核奖（财政部分）",
}

ZHUJI = "诸暨方案 二(四)3"
RULES = {
    r.name: r
    for r in (
        Rule("equivalents", "工作当量", "equivalents", 1, "docs/compensation.md step 1"),
        Rule("growth_cap", "基本医疗当量增长上限", "growth cap on basic medical", 2, ZHUJI),
        Rule("force_majeure", "不可抗力当量补足", "force-majeure top-up", 3, ZHUJI),
        Rule("unit_price", "当量单价", "unit price", 4, ZHUJI),
        Rule("point_value", "点值（预算÷全县当量）", "point value", 4, "configurable"),
        Rule("coefficient", "考核系数", "assessment coefficient", 5, "configurable"),
        Rule("basic_medical", "基本医疗购买金额", "basic-medical amount", 6, ZHUJI),
        Rule("basic_public_health", "基本公卫购买金额", "public-health amount", 5, ZHUJI),
        Rule("directive_tasks", "指令性任务", "directive tasks", 7, ZHUJI),
        Rule("remote_adjustment", "边缘乡镇调节补助", "remote-township adjustment", 8, ZHUJI),
        Rule(
            "year_end_bonus",
            "年终考核奖财政部分",
            "year-end bonus, finance share",
            9,
            "诸暨方案 二(四)2",
        ),
        Rule("advance", "按月预拨", "monthly advance", 10, "configurable"),
        Rule("settlement", "年终清算", "year-end settlement", 10, "configurable"),
    )
}


def yuan(amount: Decimal) -> Decimal:
    """Round money to the fen, ROUND_HALF_UP (docs/compensation.md, rounding)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def round_eu(amount: Decimal) -> Decimal:
    return amount.quantize(EU_QUANTUM, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class DirectiveTask:
    """指令性任务: bought at a fixed amount (定项定额), paid by completed share."""

    code: str
    name: str
    amount: Decimal
    completion: Decimal  # 0–1; 0 until completion is recorded
    reference: str


EUByMonth = Mapping[int, Decimal]


@dataclass(frozen=True)
class InstitutionInputs:
    """Everything the rule steps read about one institution for one year."""

    code: str
    name: str = ""
    remote: bool = False
    headcount: int = 0  # 核定编制数 of the year
    score: Decimal | None = None  # 综合考核得分; None: not yet recorded
    score_reference: str = ""
    income: EUByMonth = field(default_factory=dict)  # 医疗服务收入（不含药品） by month, yuan
    pay_level: Decimal | None = None  # 在编职工人均年收入, yuan
    tasks: tuple[DirectiveTask, ...] = ()
    equivalents: Mapping[str, EUByMonth] = field(default_factory=dict)  # category → month → EU
    previous: Mapping[str, EUByMonth] = field(default_factory=dict)  # same months, last year
    non_compliant: EUByMonth = field(default_factory=dict)  # public health below standard
    force_majeure: frozenset[int] = frozenset()  # months declared affected
    advances_paid: Decimal | None = None  # None: the advances this pipeline computes

    def eu(self, category: str, month: int) -> Decimal:
        return round_eu(self.equivalents.get(category, {}).get(month, ZERO))

    def eu_previous(self, category: str, month: int) -> Decimal:
        return round_eu(self.previous.get(category, {}).get(month, ZERO))


@dataclass(frozen=True)
class CountyInputs:
    year: int
    institutions: Mapping[str, InstitutionInputs]


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Equivalents:
    """One category's equivalents of an institution for the period, and what was bought."""

    actual: Decimal = ZERO
    previous_year: Decimal = ZERO
    cap_limit: Decimal | None = None
    excess: Decimal = ZERO  # above the growth cap: reported, not bought
    top_up: Decimal = ZERO  # force majeure
    bought: Decimal = ZERO  # actual − excess + top-up
    non_compliant: Decimal = ZERO  # public health below standard: not bought
    by_month: dict[int, Decimal] = field(default_factory=dict)  # bought, per month


@dataclass
class InstitutionResult:
    code: str
    name: str
    period: str
    equivalents: dict[str, Equivalents]
    prices: dict[str, dict[int, Decimal]]  # category → month → price (元/当量)
    score: Decimal | None
    coefficient: Decimal
    components: dict[str, Decimal]
    total: Decimal  # annual amount; for a month the advance basis (Σ components)
    advances: Decimal  # annual: advances paid; month: this month's advance
    settlement: Decimal  # total − advances (annual); 0 for a month
    advance_ratio: Decimal | None = None  # month only
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self, *, with_steps: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "period": self.period,
            "equivalents": {
                c: {
                    "actual": e.actual,
                    "previous_year": e.previous_year,
                    "cap_limit": e.cap_limit,
                    "excess": e.excess,
                    "top_up": e.top_up,
                    "bought": e.bought,
                    "non_compliant": e.non_compliant,
                }
                for c, e in self.equivalents.items()
            },
            "unit_price": {c: distinct_prices(p) for c, p in self.prices.items()},
            "score": self.score,
            "coefficient": self.coefficient,
            "components": self.components,
            "total": self.total,
            "advances": self.advances,
            "settlement": self.settlement,
            "warnings": self.warnings,
        }
        if self.advance_ratio is not None:
            out["advance_ratio"] = self.advance_ratio
        if with_steps:
            out["steps"] = [s.as_json() for s in self.steps]
        return to_json(out)  # type: ignore[no-any-return]


@dataclass
class CountyResult:
    period: str
    institutions: dict[str, InstitutionResult]
    steps: list[Step] = field(default_factory=list)  # county-wide: point values

    @property
    def total(self) -> Decimal:
        return sum((r.total for r in self.institutions.values()), ZERO)

    def as_json(self, *, with_steps: bool = False) -> dict[str, Any]:
        rows = [r.as_json(with_steps=with_steps) for r in self.institutions.values()]
        return {
            "period": self.period,
            "institutions": rows,
            "totals": to_json(
                {
                    "total": self.total,
                    "advances": sum((r.advances for r in self.institutions.values()), ZERO),
                    "settlement": sum((r.settlement for r in self.institutions.values()), ZERO),
                    **{
                        c: sum((r.components[c] for r in self.institutions.values()), ZERO)
                        for c in COMPONENTS
                    },
                }
            ),
            "county_steps": [s.as_json() for s in self.steps],
        }


def distinct_prices(prices: Mapping[int, Decimal]) -> list[dict[str, str]]:
    """A price per run of months: [{"from_month": 1, "price": "12.50"}, …]."""
    out: list[dict[str, str]] = []
    for month in sorted(prices):
        if not out or out[-1]["price"] != str(prices[month]):
            out.append({"from_month": str(month), "price": str(prices[month])})
    return out
