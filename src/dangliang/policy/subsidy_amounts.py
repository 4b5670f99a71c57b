"""Institution compensation (机构补偿), steps 5–10: the coefficient and the money amounts.

The assessment coefficient (step 5), the annual amount of each money component (basic medical
with the income offset, public health, directive tasks, remote-township adjustment, year-end
bonus: steps 6–9) with the year-end settlement (年终清算), and the month's advance (按月预拨,
step 10). Each step reads its parameters through a `StepRecorder`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from dangliang.policy.subsidy_pricing import COEFFICIENT_MODES, Prices, Run, choice
from dangliang.policy.subsidy_records import (
    COMPONENTS,
    MONTHS,
    ONE,
    ZERO,
    Equivalents,
    InstitutionInputs,
    InstitutionResult,
    yuan,
)
from dangliang.policy.trace import Step, StepRecorder

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
    if choice("assessment.coefficient_mode", mode, COEFFICIENT_MODES) == "linear":
        k = inst.score / Decimal(100)
    else:
        k = ZERO
        for band in r.param("assessment.coefficient_bands", jan1).as_bands():
            if inst.score >= band["min_score"]:
                k = band["coefficient"]
    r.outputs(coefficient=k)
    return k


# ---- steps 4–9: annual amounts ----------------------------------------------------------------


def annual_amounts(
    run: Run,
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
    """V_bm × k, or with the income offset max(0, V_bm × k − income) (docs/compensation.md,
    step 6)."""
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
    run: Run,
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
