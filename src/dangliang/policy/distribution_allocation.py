"""Performance pay inside an institution (机构内部绩效工资分配): the limits and the arithmetic.

The policy limits and option names of the distribution (`MIN_REWARD_SHARE`,
`SURPLUS_SHARE_RANGE`, `FLOOR_FUNDING`, `SURPLUS_WEIGHTS`, the known outside-total items) and
its rule table; the largest-remainder split of an amount in whole fen (最大余额法,
`allocate`); the split of the pool into base and reward parts (`split_pool`) and the
months-in-post share (`prorate`); and the checks that refuse invalid values, every problem at
once. See `policy.distribution` for the policy these follow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from dangliang.domain.errors import InvalidValue
from dangliang.policy.subsidy_records import FEN, ONE, yuan
from dangliang.policy.trace import Rule

ZHUJI = "诸暨方案 二(四)2"
MIN_REWARD_SHARE = Decimal("0.60")
"""「奖励性绩效工资占比绩效总额不低于60%」 [诸暨方案 二(四)2]."""
SURPLUS_SHARE_RANGE = (Decimal("0.40"), Decimal("0.60"))
"""「收支结余（不含财政专项补助）的40%—60%…进行再分配」 [诸暨方案 二(四)2]."""

FloorFunding = Literal["from_pool", "outside"]
FLOOR_FUNDING: tuple[FloorFunding, ...] = ("from_pool", "outside")
SurplusWeights = Literal["reward", "assessment"]
SURPLUS_WEIGHTS: tuple[SurplusWeights, ...] = ("reward", "assessment")

FAMILY_DOCTOR_FEES = "family_doctor_contract_fees"
EPIDEMIC_ALLOWANCE = "epidemic_allowance"
OUTSIDE_ITEMS_ZH = {
    FAMILY_DOCTOR_FEES: "家庭医生签约服务费",
    EPIDEMIC_ALLOWANCE: "公卫医生防疫补贴",
}
"""Known outside-total items (不纳入绩效工资总量); other item names are accepted as given."""

NIL = Decimal("0.00")  # zero yuan, shown with its fen like every other amount
WEIGHT_SHOWN = Decimal("0.000001")  # weights in the trace; the split uses exact fractions

# The distribution's steps are not numbered: Rule.step is 0, except the year-end bonus
# (step 9 of docs/compensation.md).
RULES = {
    r.name: r
    for r in (
        Rule("pool_split", "基础性/奖励性绩效划分", "base / reward split", 0, ZHUJI),
        Rule("surplus", "收支结余再分配额", "surplus redistributed", 0, ZHUJI),
        Rule("weights", "分配权重", "distribution weights", 0, f"{ZHUJI}; configurable"),
        Rule("base_part", "基础性绩效分配", "base part", 0, "configurable"),
        Rule("reward_part", "奖励性绩效分配", "reward part", 0, ZHUJI),
        Rule("surplus_part", "结余再分配", "surplus share", 0, f"{ZHUJI}; configurable"),
        Rule("floors", "保底补足", "floor top-up", 0, "seed 001; configurable"),
        Rule("outside_total", "总量外项目", "outside the total", 0, ZHUJI),
        Rule("year_end_bonus", "年终绩效考核奖", "year-end bonus", 9, ZHUJI),
        Rule("check", "分配核对", "distribution check", 0, "docs/performance.md"),
    )
}


# ---------------------------------------------------------------------------------------------
# Largest remainder (最大余额法)


def allocate(
    total: Decimal, weights: Mapping[str, Decimal], *, quantum: Decimal = FEN
) -> dict[str, Decimal]:
    """Split `total` in proportion to `weights` so that the parts add up exactly to it.

    Hamilton's (largest-remainder) method, in whole quanta (fen by default): each key first
    gets its exact share rounded down, then the quanta left over go one each to the largest
    remainders. Ties go to the key that sorts first (ascending Python string order, i.e. by
    Unicode code point: "A01" before "A02", "Z" before "a"), so the result does not depend on
    the mapping's order. Every part is within one quantum of its exact share; a zero weight
    gets 0; a larger weight never gets a smaller part.

    Refused (InvalidValue): a negative or non-finite weight, a total that is negative or not a
    whole number of quanta, and a non-zero total with every weight zero (or no keys).
    """
    exact = {key: _weight_fraction(key, w) for key, w in weights.items()}
    return _allocate(total, exact, quantum, ("金额", "amount"))


def _allocate(
    total: Decimal,
    weights: Mapping[str, Fraction],
    quantum: Decimal,
    what: tuple[str, str],
) -> dict[str, Decimal]:
    units = _whole_units(total, quantum, what)
    parts = _largest_remainder(units, weights, total, what)
    return {key: parts[key] * quantum for key in weights}


def _whole_units(total: Decimal, quantum: Decimal, what: tuple[str, str]) -> int:
    if not (quantum.is_finite() and quantum > 0):
        raise InvalidValue(
            f"分配单位必须为正：{quantum}", f"the quantum must be positive: {quantum}"
        )
    units = Fraction(total) / Fraction(quantum) if total.is_finite() else Fraction(-1)
    if units < 0 or units.denominator != 1:
        raise InvalidValue(
            f"{what[0]} {total} 必须是不小于 0 的 {quantum} 的整数倍",
            f"the {what[1]} {total} must be a non-negative whole number of {quantum}",
        )
    return units.numerator


def _largest_remainder(
    units: int, weights: Mapping[str, Fraction], total: Decimal, what: tuple[str, str]
) -> dict[str, int]:
    weight_sum = sum(weights.values(), Fraction(0))
    if weight_sum == 0:
        if units:
            raise InvalidValue(
                f"{what[0]} {total} 无从分配：所有权重均为 0",
                f"nowhere to put the {what[1]} {total}: every weight is 0",
            )
        return dict.fromkeys(weights, 0)
    exact = {key: units * w / weight_sum for key, w in weights.items()}
    parts = {key: math.floor(share) for key, share in exact.items()}
    left = units - sum(parts.values())  # < the number of non-zero remainders
    by_remainder = sorted(
        (key for key in exact if exact[key] != parts[key]),
        key=lambda key: (parts[key] - exact[key], key),  # largest remainder first, then key
    )
    for key in by_remainder[:left]:
        parts[key] += 1
    return parts


def _weight_fraction(key: str, weight: Decimal) -> Fraction:
    if not weight.is_finite() or weight < 0:
        raise InvalidValue(
            f"{key} 的权重 {weight} 无效：权重不得为负",
            f"the weight of {key} is {weight}: weights must be non-negative numbers",
        )
    return Fraction(weight)


# ---------------------------------------------------------------------------------------------
# The pool split and proration


def split_pool(
    pool: Decimal, reward_share: Decimal, *, min_reward_share: Decimal = MIN_REWARD_SHARE
) -> tuple[Decimal, Decimal]:
    """(base, reward): reward = pool × reward_share to the fen (ROUND_HALF_UP), base = the rest.

    诸暨方案 二(四)2: 「在奖励性绩效工资占比绩效总额不低于60%的前提下，自主确定基础性绩效工资和
    奖励性绩效工资比例」: a share below `min_reward_share` (or above 1) is refused. The minimum is
    checked on the share; the rounded reward of a tiny pool may miss it by under half a fen.
    """
    problems = money_problems("绩效工资总量", "performance-pay total", pool)
    problems += reward_share_problems(reward_share, min_reward_share)
    _refuse(problems)
    reward = yuan(pool * reward_share)
    return pool - reward, reward


def prorate(months_in_post: int, months: int = 12) -> Decimal:
    """The months-in-post share of a period: 6 of 12 → 0.5 (在岗月数占比).

    Exact when it terminates, otherwise to the Decimal context's precision (28 digits); the
    distribution itself uses the exact fraction, so this value is for showing.
    """
    _refuse(months_problems("", months_in_post, months))
    return Decimal(months_in_post) / Decimal(months)


def reward_share_problems(share: Decimal, minimum: Decimal) -> list[tuple[str, str]]:
    if share.is_finite() and minimum <= share <= ONE:
        return []
    return [
        (
            f"奖励性绩效占比 {share} 不符合要求：{ZHUJI}「在奖励性绩效工资占比绩效总额不低于60%的"
            f"前提下…」，占比须在 {minimum} 与 1 之间",
            f"reward share {share} refused: {ZHUJI} requires the reward part to be at least "
            f"60% of the performance-pay total (「奖励性绩效工资占比绩效总额不低于60%」); "
            f"the share must lie within {minimum}–1",
        )
    ]


def surplus_share_problems(
    surplus: Decimal, share: Decimal | None, allowed: tuple[Decimal, Decimal]
) -> list[tuple[str, str]]:
    low, high = allowed
    if share is None:
        if surplus.is_finite() and surplus > 0:
            return [("有收支结余但未给出再分配比例", "a surplus is given without a surplus share")]
        return []
    if share.is_finite() and low <= share <= high:
        return []
    return [
        (
            f"结余再分配比例 {share} 不在 {low}—{high} 之间：{ZHUJI}「允许将基层医疗卫生机构收支"
            "结余（不含财政专项补助）的40%—60%根据综合考核结果进行再分配」",
            f"surplus share {share} is outside {low}–{high}: {ZHUJI} allows 40%–60% of the "
            "surplus (without special finance subsidies) to be redistributed",
        )
    ]


def money_problems(label_zh: str, label_en: str, amount: Decimal) -> list[tuple[str, str]]:
    if amount.is_finite() and amount >= 0 and amount == amount.quantize(FEN):
        return []
    return [
        (
            f"{label_zh} {amount} 必须是不小于 0、精确到分的金额",
            f"{label_en} {amount} must be a non-negative amount in whole fen",
        )
    ]


def number_problems(label_zh: str, label_en: str, value: Decimal) -> list[tuple[str, str]]:
    if value.is_finite() and value >= 0:
        return []
    return [(f"{label_zh} {value} 不得为负", f"{label_en} {value} must not be negative")]


def months_problems(who: str, months_in_post: int, months: int) -> list[tuple[str, str]]:
    if months > 0 and 0 <= months_in_post <= months:
        return []
    return [
        (
            f"{who}在岗月数 {months_in_post} 必须在 0 与期间月数 {months} 之间",
            f"{who}months in post {months_in_post} must lie within 0–{months} (period months)",
        )
    ]


def _refuse(problems: Sequence[tuple[str, str]]) -> None:
    """One refusal listing every problem found (beancount style: all at once)."""
    if problems:
        raise InvalidValue("；".join(p[0] for p in problems), "; ".join(p[1] for p in problems))
