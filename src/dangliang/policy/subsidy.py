"""Institution compensation (机构补偿): the rule steps of DOMAIN.md §4 as a pipeline.

Every step is a small function of (period, inputs, parameters) that reads its parameters
through a `StepRecorder`, so the trace of what it used is kept with its result (see
`policy.trace`). Pure: no I/O, no clock; the application gathers the inputs from the log.

The pipeline, for a year (annual settlement, 年终清算) or a month (advance, 预拨):

1. equivalents   EU per category and month (not voided; public health only when compliant)
2. growth_cap    basic-medical EU above `(1 + cap) × last year` is reported, not bought; the
                 excess is taken from the last months of the year (the work done after the
                 cap was reached)
3. force_majeure in declared months EU is topped up to the same month of last year; reported
                 apart from the capped EU (the top-up is not subject to the cap)
4. unit_price    fixed per category and month, or point value = budget × (1 − reserve) /
                 county EU (provisional per month, final on the year)
5. coefficient   assessment score → k (linear score/100, or bands); compliant public health
                 is bought in full when `public_health_full_purchase`
6. income offset basic medical = max(0, value × k − medical-service income) when switched on
7. directive tasks, 8. remote-township adjustment, 9. year-end bonus (finance share)
10. advances     ratio × month basis at the provisional coefficient; settlement = annual −
                 advances (positive: top-up 补差, negative: claw-back 扣回)

Rounding happens at named steps only (DOMAIN.md §7): equivalents at 4 places (given so),
point values at 6 places, and each money component, advance and per-head amount to the fen,
ROUND_HALF_UP. Sums of rounded components are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dangliang.policy.parameters import ParameterLookupError, ParameterTree
from dangliang.policy.trace import Rule, Step, StepRecorder, to_json

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
        Rule("equivalents", "工作当量", "equivalents", 1, "DOMAIN.md §4 step 1"),
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
    """Round money to the fen, ROUND_HALF_UP (DOMAIN.md §7)."""
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
            "unit_price": {c: _distinct_prices(p) for c, p in self.prices.items()},
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


def _distinct_prices(prices: Mapping[int, Decimal]) -> list[dict[str, str]]:
    """A price per run of months: [{"from_month": 1, "price": "12.50"}, …]."""
    out: list[dict[str, str]] = []
    for month in sorted(prices):
        if not out or out[-1]["price"] != str(prices[month]):
            out.append({"from_month": str(month), "price": str(prices[month])})
    return out


# ---------------------------------------------------------------------------------------------
# The pipeline


class _Run:
    """One computation: the parameter tree and the steps recorded so far."""

    def __init__(self, tree: ParameterTree, period: str) -> None:
        self.tree = tree
        self.period = period

    def step(self, rule: str, into: list[Step]) -> StepRecorder:
        step = Step(RULES[rule], self.period)
        into.append(step)
        return StepRecorder(self.tree, step)


def compute_year(tree: ParameterTree, county: CountyInputs) -> CountyResult:
    """Annual amounts and year-end settlement of every institution (年终清算)."""
    year = county.year
    run = _Run(tree, str(year))
    steps: dict[str, list[Step]] = {code: [] for code in county.institutions}
    bought = {
        code: _bought_equivalents(run, year, inst, MONTHS, steps[code])
        for code, inst in county.institutions.items()
    }
    county_steps: list[Step] = []
    prices = _annual_prices(run, year, bought, county_steps)
    months = [compute_month(tree, county, m) for m in MONTHS]
    results = {}
    for code, inst in county.institutions.items():
        computed_advances = sum((m.institutions[code].advances for m in months), ZERO)
        results[code] = _annual_amounts(
            run, year, inst, bought[code], prices, computed_advances, steps[code]
        )
    return CountyResult(str(year), results, county_steps)


def compute_month(tree: ParameterTree, county: CountyInputs, month: int) -> CountyResult:
    """The month's advance of every institution (按月预拨): provisional, no cap, no tasks."""
    year = county.year
    run = _Run(tree, f"{year}-{month:02d}")
    steps: dict[str, list[Step]] = {code: [] for code in county.institutions}
    bought = {
        code: _bought_equivalents(run, year, inst, (month,), steps[code], cap=False)
        for code, inst in county.institutions.items()
    }
    county_steps: list[Step] = []
    prices = _month_prices(run, year, month, bought, county_steps)
    results = {
        code: _advance(run, year, month, inst, bought[code], prices, steps[code])
        for code, inst in county.institutions.items()
    }
    return CountyResult(run.period, results, county_steps)


# ---- steps 1–3: equivalents bought ------------------------------------------------------------


def _bought_equivalents(
    run: _Run,
    year: int,
    inst: InstitutionInputs,
    months: tuple[int, ...],
    steps: list[Step],
    *,
    cap: bool = True,
) -> dict[str, Equivalents]:
    r = run.step("equivalents", steps)
    out = {c: Equivalents() for c in CATEGORIES}
    for c in CATEGORIES:
        out[c].actual = sum((inst.eu(c, m) for m in months), ZERO)
        out[c].previous_year = sum((inst.eu_previous(c, m) for m in months), ZERO)
        out[c].by_month = {m: inst.eu(c, m) for m in months}
    out["basic_public_health"].non_compliant = sum(
        (round_eu(inst.non_compliant.get(m, ZERO)) for m in months), ZERO
    )
    r.inputs(by_month={c: out[c].by_month.copy() for c in CATEGORIES})
    r.outputs(**{c: out[c].actual for c in CATEGORIES})
    r.outputs(non_compliant_public_health=out["basic_public_health"].non_compliant)
    if cap:
        _growth_cap(run.step("growth_cap", steps), year, out["basic_medical"])
    _force_majeure(run.step("force_majeure", steps), year, inst, months, out)
    for e in out.values():
        e.bought = sum(e.by_month.values(), ZERO)
    return out


def _growth_cap(r: StepRecorder, year: int, bm: Equivalents) -> None:
    """诸暨方案 二(四)3：「基本医疗年度当量增长不超过10%」. The excess is taken from the last
    months: the equivalents done after the cap was reached are the ones not bought."""
    cap = r.param("basic_medical_growth_cap", date(year, 1, 1)).optional_decimal()
    r.inputs(actual=bm.actual, previous_year=bm.previous_year)
    if cap is None:
        r.note("增长上限未启用 / no growth cap")
        return
    if bm.previous_year == 0:
        r.note("上年无基本医疗当量，不设上限 / no equivalents last year: no cap")
        return
    bm.cap_limit = round_eu(bm.previous_year * (ONE + cap))
    bm.excess = max(ZERO, bm.actual - bm.cap_limit)
    left = bm.excess
    for month in sorted(bm.by_month, reverse=True):
        taken = min(left, bm.by_month[month])
        bm.by_month[month] -= taken
        left -= taken
    r.outputs(cap_limit=bm.cap_limit, excess=bm.excess, bought=bm.actual - bm.excess)


def _force_majeure(
    r: StepRecorder,
    year: int,
    inst: InstitutionInputs,
    months: tuple[int, ...],
    out: dict[str, Equivalents],
) -> None:
    """诸暨方案 二(四)3：「因疫情等不可抗因素造成的工作当量下降，参照上一年度予以补足」."""
    declared = sorted(m for m in months if m in inst.force_majeure)
    r.inputs(declared_months=declared)
    if not declared:
        return
    on = r.param("force_majeure_top_up", date(year, 1, 1)).as_bool()
    if not on:
        r.note("不可抗力补足未启用 / force-majeure top-up is off")
        return
    for c in CATEGORIES:
        for m in declared:
            top_up = max(ZERO, inst.eu_previous(c, m) - inst.eu(c, m))
            out[c].top_up += top_up
            out[c].by_month[m] += top_up
    r.outputs(**{f"top_up_{c}": out[c].top_up for c in CATEGORIES})


# ---- step 4: prices ---------------------------------------------------------------------------

Prices = dict[str, dict[int, Decimal]]  # category → month → 元/当量


PRICING_MODES = ("fixed", "point_value")
COEFFICIENT_MODES = ("linear", "bands")


def _mode(run: _Run, year: int) -> str:
    """The pricing mode of the year: one of PRICING_MODES, the same in every month (a county
    changes how it prices from 1 January, never within a settlement year)."""
    modes = {run.tree.get("pricing.mode", date(year, m, 1)).as_text() for m in MONTHS}
    if len(modes) > 1:
        raise ParameterLookupError(
            f"pricing.mode 在 {year} 年内变化（{'、'.join(sorted(modes))}）："
            "定价方式只能自 1 月 1 日起变更",
            f"pricing.mode changes within {year} ({', '.join(sorted(modes))}): "
            "change the pricing mode from 1 January only",
        )
    return _choice("pricing.mode", modes.pop(), PRICING_MODES)


def _choice(path: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ParameterLookupError(
            f"政策参数 {path} 的值 {value!r} 无效；可选：{', '.join(allowed)}",
            f"policy parameter {path} is {value!r}; it must be one of: {', '.join(allowed)}",
        )
    return value


def _annual_prices(
    run: _Run, year: int, bought: Mapping[str, Mapping[str, Equivalents]], steps: list[Step]
) -> Prices:
    jan1 = date(year, 1, 1)
    if _mode(run, year) == "fixed":
        return _fixed_prices(run, year, MONTHS, steps)
    r = run.step("point_value", steps)
    r.param("pricing.mode", jan1)
    if not r.param("pricing.final_at_year_end", jan1).as_bool():
        r.note("点值不在年终重算，按各月暂定点值 / monthly point values are final")
        prices: Prices = {c: {} for c in CATEGORIES}
        for m in MONTHS:
            month = _month_prices(run, year, m, _one_month(bought, m), steps)
            for c in CATEGORIES:
                prices[c][m] = month[c][m]
        return prices
    totals = {c: sum((b[c].bought for b in bought.values()), ZERO) for c in CATEGORIES}
    point = _point_values(r, jan1, ONE, totals)
    return {c: dict.fromkeys(MONTHS, point[c]) for c in CATEGORIES}


def _month_prices(
    run: _Run,
    year: int,
    month: int,
    bought: Mapping[str, Mapping[str, Equivalents]],
    steps: list[Step],
) -> Prices:
    first = date(year, month, 1)
    if _mode(run, year) == "fixed":
        return _fixed_prices(run, year, (month,), steps)
    r = run.step("point_value", steps)
    r.param("pricing.mode", first)
    if not r.param("pricing.provisional_monthly", date(year, 1, 1)).as_bool():
        r.note(
            "本县不按月暂定点值；预拨仍按当月预算与当量暂算 / advances still use a month's value"
        )
    totals = {
        c: sum((b[c].by_month.get(month, ZERO) for b in bought.values()), ZERO) for c in CATEGORIES
    }
    point = _point_values(r, date(year, 1, 1), Decimal(12), totals)
    return {c: {month: point[c]} for c in CATEGORIES}


def _fixed_prices(run: _Run, year: int, months: tuple[int, ...], steps: list[Step]) -> Prices:
    """诸暨方案 二(四)3：「明确标准当量单价固定」: a price per category, dated by month."""
    r = run.step("unit_price", steps)
    for m in months:
        r.param("pricing.mode", date(year, m, 1))
    prices: Prices = {
        c: {m: r.param(f"unit_price.{c}", date(year, m, 1)).as_decimal() for m in months}
        for c in CATEGORIES
    }
    r.outputs(**{c: _distinct_prices(p) for c, p in prices.items()})
    return prices


def _point_values(
    r: StepRecorder, jan1: date, share: Decimal, totals: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """point value = budget ÷ `share` × (1 − reserve) ÷ county equivalents, to 6 places.

    `share` is 12 for a provisional monthly value (a twelfth of the year's budget), 1 for the
    final value of the year. With no equivalents in the county there is nothing to buy: 0.
    """
    reserve = r.param("pricing.reserve_ratio", jan1).optional_decimal() or ZERO
    out: dict[str, Decimal] = {}
    for c in CATEGORIES:
        budget = r.param(f"budget.{c}", jan1).as_decimal()
        available = budget / share * (ONE - reserve)
        out[c] = (
            (available / totals[c]).quantize(POINT_VALUE_QUANTUM, rounding=ROUND_HALF_UP)
            if totals[c]
            else ZERO
        )
        r.outputs(
            **{
                f"{c}_budget": yuan(budget / share),
                f"{c}_reserve": yuan(budget / share * reserve),
                f"{c}_county_equivalents": totals[c],
                f"{c}_point_value": out[c],
            }
        )
    return out


def _one_month(
    bought: Mapping[str, Mapping[str, Equivalents]], month: int
) -> dict[str, dict[str, Equivalents]]:
    return {
        code: {c: Equivalents(by_month={month: e.by_month.get(month, ZERO)}) for c, e in b.items()}
        for code, b in bought.items()
    }


# ---- step 5: coefficient ----------------------------------------------------------------------


def _coefficient(r: StepRecorder, year: int, inst: InstitutionInputs) -> Decimal:
    jan1 = date(year, 1, 1)
    r.inputs(score=inst.score, score_reference=inst.score_reference)
    if inst.score is None:
        k = r.param("advance.provisional_coefficient", date(year, 12, 1)).as_decimal()
        r.note("考核得分未录入，按暂定系数计算 / no assessment score yet: provisional coefficient")
        r.outputs(coefficient=k)
        return k
    mode = r.param("assessment.coefficient_mode", jan1).as_text()
    if _choice("assessment.coefficient_mode", mode, COEFFICIENT_MODES) == "linear":
        k = inst.score / Decimal(100)
    else:
        k = ZERO
        for band in r.param("assessment.coefficient_bands", jan1).as_bands():
            if inst.score >= band["min_score"]:
                k = band["coefficient"]
    r.outputs(coefficient=k)
    return k


# ---- steps 4–9: annual amounts ----------------------------------------------------------------


def _annual_amounts(
    run: _Run,
    year: int,
    inst: InstitutionInputs,
    bought: dict[str, Equivalents],
    prices: Prices,
    computed_advances: Decimal,
    steps: list[Step],
) -> InstitutionResult:
    warnings: list[str] = []
    k = _coefficient(run.step("coefficient", steps), year, inst)
    if inst.score is None:
        warnings.append(
            f"{inst.code}: 考核得分未录入，按暂定系数 {k} 计算 / no score: provisional {k}"
        )
    components = {
        "basic_medical": _basic_medical(
            run.step("basic_medical", steps), year, inst, bought, prices, k, MONTHS
        ),
        "basic_public_health": _public_health(
            run.step("basic_public_health", steps), year, bought, prices, k, MONTHS
        ),
        "directive_tasks": _directive_tasks(run.step("directive_tasks", steps), year, inst),
        "remote_adjustment": _remote_adjustment(
            run.step("remote_adjustment", steps), year, inst, warnings
        ),
        "year_end_bonus": _year_end_bonus(run.step("year_end_bonus", steps), year, inst),
    }
    total = sum(components.values(), ZERO)
    advances = computed_advances if inst.advances_paid is None else inst.advances_paid
    r = run.step("settlement", steps)
    r.inputs(
        total=total,
        advances=advances,
        advances_source="computed" if inst.advances_paid is None else "paid",
    )
    settlement = total - advances
    r.outputs(settlement=settlement)
    r.note("正数为补差，负数为扣回 / positive: top-up; negative: claw-back")
    return InstitutionResult(
        code=inst.code,
        name=inst.name,
        period=str(year),
        equivalents=bought,
        prices=prices,
        score=inst.score,
        coefficient=k,
        components=components,
        total=total,
        advances=advances,
        settlement=settlement,
        steps=steps,
        warnings=warnings,
    )


def _value(bought: Equivalents, prices: Mapping[int, Decimal], months: tuple[int, ...]) -> Decimal:
    """V = Σ months EU × price in force that month (exact; rounded by the caller)."""
    return sum((bought.by_month.get(m, ZERO) * prices[m] for m in months), ZERO)


def _basic_medical(
    r: StepRecorder,
    year: int,
    inst: InstitutionInputs,
    bought: Mapping[str, Equivalents],
    prices: Prices,
    k: Decimal,
    months: tuple[int, ...],
) -> Decimal:
    """V_bm × k, or with the income offset max(0, V_bm × k − income) (DOMAIN.md §4 step 6)."""
    value = _value(bought["basic_medical"], prices["basic_medical"], months)
    r.inputs(equivalents=bought["basic_medical"].bought, value=value, coefficient=k)
    amount = value * k
    if r.param("income_offset", date(year, 1, 1)).as_bool():
        income = sum((inst.income.get(m, ZERO) for m in months), ZERO)
        r.inputs(income=income)
        amount = max(ZERO, amount - income)
    amount = yuan(amount)
    r.outputs(amount=amount)
    return amount


def _public_health(
    r: StepRecorder,
    year: int,
    bought: Mapping[str, Equivalents],
    prices: Prices,
    k: Decimal,
    months: tuple[int, ...],
) -> Decimal:
    """诸暨方案 二(四)3：「…基本公共卫生当量予以足额购买」: k = 1 when full purchase."""
    ph = bought["basic_public_health"]
    amount = ZERO
    for m in months:
        full = r.param("public_health_full_purchase", date(year, m, 1)).as_bool()
        amount += ph.by_month.get(m, ZERO) * prices["basic_public_health"][m] * (ONE if full else k)
    r.inputs(equivalents=ph.bought, non_compliant=ph.non_compliant, coefficient=k)
    amount = yuan(amount)
    r.outputs(amount=amount)
    return amount


def _directive_tasks(r: StepRecorder, year: int, inst: InstitutionInputs) -> Decimal:
    """定项定额: each task's amount × its completed share, to the fen per task."""
    if not inst.tasks or not r.param("directive_tasks.enabled", date(year, 1, 1)).as_bool():
        r.outputs(amount=ZERO)
        return ZERO
    paid = {t.code: yuan(t.amount * t.completion) for t in inst.tasks}
    r.inputs(
        tasks={
            t.code: {
                "name": t.name,
                "amount": t.amount,
                "completion": t.completion,
                "reference": t.reference,
            }
            for t in inst.tasks
        }
    )
    total = sum(paid.values(), ZERO)
    r.outputs(paid=paid, amount=total)
    return total


def _remote_adjustment(
    r: StepRecorder, year: int, inst: InstitutionInputs, warnings: list[str]
) -> Decimal:
    """诸暨方案 二(四)3: remote townships that pass assessment; per head
    clamp(benchmark − actual, low × benchmark, high × benchmark) when benchmark > actual."""
    jan1 = date(year, 1, 1)
    r.inputs(remote=inst.remote)
    if not inst.remote or not r.param("remote_adjustment.enabled", jan1).as_bool():
        r.outputs(amount=ZERO)
        return ZERO
    pass_score = r.param("assessment.pass_score", jan1).as_decimal()
    r.inputs(
        score=inst.score, pass_score=pass_score, pay_level=inst.pay_level, headcount=inst.headcount
    )
    if inst.score is None or inst.score < pass_score:
        r.note("考核未合格或得分未录入，不予调节 / not passed (or no score): nothing")
        r.outputs(amount=ZERO)
        return ZERO
    benchmark = r.param("remote_adjustment.benchmark_per_head", jan1).optional_decimal()
    if benchmark is None:
        r.note("未设基准水平 / no benchmark level")
        r.outputs(amount=ZERO)
        return ZERO
    if inst.pay_level is None:
        warnings.append(f"{inst.code}: 在编职工人均年收入未录入，调节补助未计 / no pay level")
        r.note("在编职工人均年收入未录入 / no pay level recorded")
        r.outputs(amount=ZERO)
        return ZERO
    gap = benchmark - inst.pay_level
    if gap <= 0:
        r.note("实际收入不低于基准，不予调节 / pay level at or above the benchmark")
        r.outputs(gap=gap, amount=ZERO)
        return ZERO
    low = r.param("remote_adjustment.low", jan1).as_decimal() * benchmark
    high = r.param("remote_adjustment.high", jan1).as_decimal() * benchmark
    per_head = yuan(min(max(gap, low), high))
    amount = per_head * inst.headcount
    r.outputs(gap=gap, low=low, high=high, per_head=per_head, amount=amount)
    return amount


def _year_end_bonus(r: StepRecorder, year: int, inst: InstitutionInputs) -> Decimal:
    """诸暨方案 二(四)2：「总额度为6万元/人（人数按在编计算），其中1万元/人由财政保障」."""
    jan1 = date(year, 1, 1)
    share = r.param("year_end_bonus.finance_share_per_head", jan1).optional_decimal()
    r.inputs(headcount=inst.headcount)
    if share is None:
        r.outputs(amount=ZERO)
        return ZERO
    amount = yuan(share * inst.headcount)
    r.outputs(amount=amount)
    return amount


# ---- step 10: the month's advance -------------------------------------------------------------


def _advance(
    run: _Run,
    year: int,
    month: int,
    inst: InstitutionInputs,
    bought: dict[str, Equivalents],
    prices: Prices,
    steps: list[Step],
) -> InstitutionResult:
    first = date(year, month, 1)
    r = run.step("advance", steps)
    k = r.param("advance.provisional_coefficient", first).as_decimal()
    ratio = r.param("advance.ratio", first).as_decimal()
    months = (month,)
    components = dict.fromkeys(COMPONENTS, ZERO)
    components["basic_medical"] = _basic_medical(
        run.step("basic_medical", steps), year, inst, bought, prices, k, months
    )
    components["basic_public_health"] = _public_health(
        run.step("basic_public_health", steps), year, bought, prices, k, months
    )
    basis = components["basic_medical"] + components["basic_public_health"]
    advance = yuan(basis * ratio)
    r.inputs(basis=basis, provisional_coefficient=k, ratio=ratio)
    r.outputs(advance=advance)
    return InstitutionResult(
        code=inst.code,
        name=inst.name,
        period=run.period,
        equivalents=bought,
        prices=prices,
        score=None,
        coefficient=k,
        components=components,
        total=basis,
        advances=advance,
        settlement=ZERO,
        advance_ratio=ratio,
        steps=steps,
    )
