"""Performance pay inside an institution (机构内部绩效工资分配): DOMAIN.md §5, the pure core.

The approved performance-pay total (绩效工资总量) of one institution for one period is split
into a base part (基础性绩效) and a reward part (奖励性绩效), and each is divided among the
staff to the fen so that **the parts add up exactly to the pool** (largest remainder). Pure:
no storage, no clock; the application gathers the inputs and keeps the result.

Policy [诸暨方案 二(四)2, seed 002; seed 001 for floors]:

- 「在奖励性绩效工资占比绩效总额不低于60%的前提下，自主确定基础性绩效工资和奖励性绩效工资比例」:
  `split_pool` refuses a reward share below `DistributionRules.min_reward_share` (0.60).
- 「以工作当量和绩效考核为主要依据」: a person's reward weight is
  `equivalents × personal coefficient × post coefficient × months-in-post share`.
- 「收支结余（不含财政专项补助）的40%—60%根据综合考核结果进行再分配」: the redistributed
  surplus is `surplus × surplus_share`, the share within `DistributionRules.surplus_share_range`.
- 「家庭医生签约服务费、公卫医生防疫补贴不纳入绩效工资总量」: paid per person, outside the pool.
- 「年终绩效考核奖，总额度为6万元/人（人数按在编计算），其中1万元/人由财政保障」.
- 「院长（主任）年薪在单位绩效工资总量外单列核定」: the director takes no share of the pool.
- 村医年工资不低于3.2万元 [seed 001]: a floor per person, topped up (see `FLOOR_FUNDING`).

Readings where the documents are silent (each one an option of `DistributionRules`, or a
value the caller passes; the defaults are illustrative, not official):

- The minimum reward share and the surplus range are module constants (`MIN_REWARD_SHARE`,
  `SURPLUS_SHARE_RANGE`) carried by `DistributionRules`; the caller may pass other values read
  from its policy bundle (proposed paths: `performance_pay.min_reward_share`,
  `performance_pay.surplus_share_min`, `performance_pay.surplus_share_max`).
- Base part: divided in proportion to `base_pay × months share` (DOMAIN.md: "fixed part by
  post"; `base_pay` is the post's base amount for a full period).
- Redistributed surplus: a separate line, divided by the reward weights
  (`surplus_weights="reward"`) or by `personal coefficient × months share` only
  (`"assessment"`, the literal 「根据综合考核结果」).
- Proration (`prorate=True`): weights, base weights, floors and the year-end bonus are scaled
  by `months_in_post / months`; off: everyone counts fully.
- Floors: compared with what the pool pays the person (base + reward + surplus share), not
  with outside-total items or the year-end bonus. `floor_funding="from_pool"`: the top-up is
  taken from the other staff's reward parts in proportion to those parts (a person cut down to
  their own floor stops contributing; the rest is shared again; refused when the others'
  reward parts cannot cover it); `"outside"`: paid on top and reported apart. A floor is for a
  full period; the director (outside the pool) has none applied.
- Year-end bonus: `year_end_bonus_per_head` to every person on establishment (在编), none to
  off-establishment staff, none to the director unless `director_year_end_bonus`; the finance
  share (`year_end_bonus_finance_per_head`) is an "of which" line. It is not part of the pool.
  (Another reading, a quota of 6万 × establishment heads divided by assessment among all
  staff, is not implemented.)

Rounding (DOMAIN.md §7): ROUND_HALF_UP to the fen at named steps only: the reward part of the
pool, the redistributed surplus, a prorated floor, a prorated year-end bonus. Every other
amount is a largest-remainder split of a whole number of fen, so sums are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any, Literal

from dangliang.domain.errors import InvalidValue
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.subsidy import FEN, ONE, yuan
from dangliang.policy.trace import Rule, Step, StepRecorder, to_json

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

# DOMAIN.md §5 has no numbered steps: Rule.step is 0, except the year-end bonus (§4 step 9).
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
        Rule("check", "分配核对", "distribution check", 0, "DOMAIN.md §5"),
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
    problems = _money_problems("绩效工资总量", "performance-pay total", pool)
    problems += _reward_share_problems(reward_share, min_reward_share)
    _refuse(problems)
    reward = yuan(pool * reward_share)
    return pool - reward, reward


def prorate(months_in_post: int, months: int = 12) -> Decimal:
    """The months-in-post share of a period: 6 of 12 → 0.5 (在岗月数占比).

    Exact when it terminates, otherwise to the Decimal context's precision (28 digits); the
    distribution itself uses the exact fraction, so this value is for showing.
    """
    _refuse(_months_problems("", months_in_post, months))
    return Decimal(months_in_post) / Decimal(months)


def _reward_share_problems(share: Decimal, minimum: Decimal) -> list[tuple[str, str]]:
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


def _surplus_share_problems(
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


def _money_problems(label_zh: str, label_en: str, amount: Decimal) -> list[tuple[str, str]]:
    if amount.is_finite() and amount >= 0 and amount == amount.quantize(FEN):
        return []
    return [
        (
            f"{label_zh} {amount} 必须是不小于 0、精确到分的金额",
            f"{label_en} {amount} must be a non-negative amount in whole fen",
        )
    ]


def _number_problems(label_zh: str, label_en: str, value: Decimal) -> list[tuple[str, str]]:
    if value.is_finite() and value >= 0:
        return []
    return [(f"{label_zh} {value} 不得为负", f"{label_en} {value} must not be negative")]


def _months_problems(who: str, months_in_post: int, months: int) -> list[tuple[str, str]]:
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
    """The readings of DOMAIN.md §5 a county chooses (defaults: 诸暨方案 and the module docs)."""

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


# ---------------------------------------------------------------------------------------------
# The distribution


class _Trace:
    """The steps of one distribution; the recorder reads no tree (the caller passes rules)."""

    def __init__(self, period: str) -> None:
        self.period = period
        self.steps: list[Step] = []
        self._tree = ParameterTree({}, {}, "dangliang.policy.distribution (rules passed in)")

    def step(self, rule: str) -> StepRecorder:
        step = Step(RULES[rule], self.period)
        self.steps.append(step)
        return StepRecorder(self._tree, step)


@dataclass
class _Lines:
    """Per-person amounts as the steps fill them in (pool members only, not the director)."""

    share: dict[str, Fraction]
    weight: dict[str, Fraction]
    base: dict[str, Decimal] = field(default_factory=dict)
    reward: dict[str, Decimal] = field(default_factory=dict)
    surplus: dict[str, Decimal] = field(default_factory=dict)
    floor: dict[str, Decimal] = field(default_factory=dict)
    top_up: dict[str, Decimal] = field(default_factory=dict)
    contribution: dict[str, Decimal] = field(default_factory=dict)


def distribute(
    institution: InstitutionPool,
    staff: Sequence[StaffInputs],
    *,
    period: str,
    rules: DistributionRules | None = None,
) -> Distribution:
    """Distribute one institution's performance pay for a period (DOMAIN.md §5).

    Steps: pool_split, surplus, weights, base_part, reward_part, surplus_part, floors,
    outside_total, year_end_bonus, check; each records its inputs and per-person outputs
    (`outputs["by_staff"]`), so `Distribution.explain` shows one person's amount from the same
    code. Refuses (InvalidValue, every problem at once) invalid inputs; see the module docs.
    """
    rules = rules or DistributionRules()
    _check_inputs(institution, staff, rules)
    trace = _Trace(period)
    base_pool, reward_pool = _pool_split(trace.step("pool_split"), institution, rules)
    redistributed = _surplus(trace.step("surplus"), institution, rules)
    members = [s for s in staff if s.staff_id != institution.director_id]
    lines = _weights(trace.step("weights"), institution, members, rules)
    _base_part(trace.step("base_part"), base_pool, members, lines)
    by_base = {s.staff_id: Fraction(s.base_pay) * lines.share[s.staff_id] for s in members}
    lines.reward = _by_weight(
        trace.step("reward_part"), reward_pool, lines.weight, "reward", by_base
    )
    surplus_weights = _surplus_weights(members, lines, rules)
    lines.surplus = _by_weight(
        trace.step("surplus_part"), redistributed, surplus_weights, "surplus", by_base
    )
    _floors(trace.step("floors"), institution, members, lines, rules)
    outside = _outside_total(trace.step("outside_total"), institution, staff)
    bonus = _year_end_bonus(trace.step("year_end_bonus"), institution, staff, rules)
    shares = {
        s.staff_id: _share(s, institution, lines, outside[s.staff_id], bonus[s.staff_id])
        for s in staff
    }
    result = Distribution(
        code=institution.code,
        period=period,
        rules=rules,
        pool=institution.pool.quantize(FEN),
        base_pool=base_pool,
        reward_pool=reward_pool,
        surplus_redistributed=redistributed,
        staff=shares,
        steps=trace.steps,
    )
    _check(trace.step("check"), result)
    return result


def _check_inputs(
    institution: InstitutionPool, staff: Sequence[StaffInputs], rules: DistributionRules
) -> None:
    inst = institution
    problems = _money_problems("绩效工资总量", "performance-pay total", inst.pool)
    problems += _reward_share_problems(inst.reward_share, rules.min_reward_share)
    problems += _money_problems("收支结余", "surplus", inst.surplus)
    problems += _surplus_share_problems(inst.surplus, inst.surplus_share, rules.surplus_share_range)
    problems += _bonus_problems(inst.year_end_bonus_per_head, inst.year_end_bonus_finance_per_head)
    for post, coefficient in inst.post_coefficients.items():
        problems += _number_problems(
            f"岗位 {post} 的系数", f"post coefficient of {post}", coefficient
        )
    problems += _staff_problems(inst, staff)
    _refuse(problems)


def _bonus_problems(per_head: Decimal, finance: Decimal) -> list[tuple[str, str]]:
    problems = _money_problems("年终考核奖", "year-end bonus per head", per_head)
    problems += _money_problems("年终考核奖财政部分", "year-end bonus finance share", finance)
    if not problems and finance > per_head:
        problems.append(("财政部分超过年终考核奖额度", "finance share exceeds the year-end bonus"))
    return problems


def _staff_problems(inst: InstitutionPool, staff: Sequence[StaffInputs]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    ids = [s.staff_id for s in staff]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(
            (f"职工重复：{', '.join(duplicates)}", f"staff repeated: {', '.join(duplicates)}")
        )
    if inst.director_id is not None and inst.director_id not in ids:
        problems.append((f"院长 {inst.director_id} 不在职工名单中", "the director is not listed"))
    for s in staff:
        problems += _person_problems(inst, s)
    for staff_id, items in inst.outside_total.items():
        if staff_id not in ids:
            problems.append(
                (f"总量外项目的职工 {staff_id} 不在名单中", f"unknown staff {staff_id}")
            )
        for item, amount in items.items():
            problems += _money_problems(f"{staff_id} 的 {item}", f"{staff_id} {item}", amount)
    return problems


def _person_problems(inst: InstitutionPool, s: StaffInputs) -> list[tuple[str, str]]:
    who = f"{s.staff_id} "
    problems = _months_problems(who, s.months_in_post, inst.months)
    problems += _number_problems(f"{who}当量", f"{who}equivalents", s.equivalents)
    problems += _number_problems(
        f"{who}个人系数", f"{who}personal coefficient", s.personal_coefficient
    )
    problems += _number_problems(f"{who}岗位基础额", f"{who}base pay", s.base_pay)
    if s.floor is not None:
        problems += _money_problems(f"{who}保底", f"{who}floor", s.floor)
    if s.staff_id != inst.director_id and s.post not in inst.post_coefficients:
        problems.append(
            (
                f"{who}的岗位 {s.post} 没有岗位系数；已有：{', '.join(inst.post_coefficients)}",
                f"{who}has post {s.post!r} without a post coefficient; known: "
                f"{', '.join(inst.post_coefficients)}",
            )
        )
    return problems


# ---- the steps ----------------------------------------------------------------------------------


def _pool_split(
    r: StepRecorder, inst: InstitutionPool, rules: DistributionRules
) -> tuple[Decimal, Decimal]:
    """诸暨方案 二(四)2: the reward part at least 60% of the total (see `split_pool`)."""
    r.inputs(
        pool=inst.pool, reward_share=inst.reward_share, min_reward_share=rules.min_reward_share
    )
    base, reward = split_pool(inst.pool, inst.reward_share, min_reward_share=rules.min_reward_share)
    r.outputs(base_pool=base, reward_pool=reward)
    r.note(
        "奖励性 = 总量 × 占比（四舍五入到分），基础性 = 总量 − 奖励性 / reward rounded, base = rest"
    )
    return base, reward


def _surplus(r: StepRecorder, inst: InstitutionPool, rules: DistributionRules) -> Decimal:
    """「收支结余（不含财政专项补助）的40%—60%根据综合考核结果进行再分配」: surplus × share."""
    r.inputs(
        surplus=inst.surplus,
        surplus_share=inst.surplus_share,
        surplus_share_range=list(rules.surplus_share_range),
    )
    amount = yuan(inst.surplus * inst.surplus_share) if inst.surplus_share is not None else NIL
    r.outputs(redistributed=amount)
    return amount


def _months_share(s: StaffInputs, inst: InstitutionPool, rules: DistributionRules) -> Fraction:
    return Fraction(s.months_in_post, inst.months) if rules.prorate else Fraction(1)


def _weights(
    r: StepRecorder, inst: InstitutionPool, members: Sequence[StaffInputs], rules: DistributionRules
) -> _Lines:
    """Reward weight = equivalents × personal coefficient × post coefficient × months share."""
    r.inputs(post_coefficients=dict(inst.post_coefficients), prorate=rules.prorate)
    share = {s.staff_id: _months_share(s, inst, rules) for s in members}
    weight = {
        s.staff_id: Fraction(s.equivalents)
        * Fraction(s.personal_coefficient)
        * Fraction(inst.post_coefficients[s.post])
        * share[s.staff_id]
        for s in members
    }
    by_staff = {
        s.staff_id: {
            "equivalents": s.equivalents,
            "personal_coefficient": s.personal_coefficient,
            "post": s.post,
            "post_coefficient": inst.post_coefficients[s.post],
            "months_in_post": s.months_in_post,
            "months_share": _shown(share[s.staff_id]),
            "weight": _shown(weight[s.staff_id]),
        }
        for s in members
    }
    r.outputs(by_staff=by_staff)
    if inst.director_id is not None:
        r.note(f"院长（主任）{inst.director_id} 年薪在总量外单列，不参与分配 / director: no share")
    return _Lines(share=share, weight=weight)


def _base_part(
    r: StepRecorder, base_pool: Decimal, members: Sequence[StaffInputs], lines: _Lines
) -> None:
    """Base part by post (configurable reading): in proportion to base_pay × months share."""
    weights = {s.staff_id: Fraction(s.base_pay) * lines.share[s.staff_id] for s in members}
    r.inputs(base_pool=base_pool)
    lines.base = _allocate(base_pool, weights, FEN, ("基础性绩效", "base pool"))
    r.outputs(
        by_staff={
            s.staff_id: {
                "base_pay": s.base_pay,
                "base_weight": _shown(weights[s.staff_id]),
                "base": lines.base[s.staff_id],
            }
            for s in members
        }
    )


def _by_weight(
    r: StepRecorder,
    amount: Decimal,
    weights: Mapping[str, Fraction],
    line: str,
    fallback: Mapping[str, Fraction] | None = None,
) -> dict[str, Decimal]:
    """Largest-remainder split of `amount` by `weights` (exact fractions). When nobody has
    any weight (no equivalents recorded in the period) and a `fallback` is given, the amount
    is shared by it instead, with a note: a pool is never left undistributed for want of
    records (a configurable reading; DOMAIN.md §5 is silent)."""
    what = {"reward": ("奖励性绩效", "reward pool"), "surplus": ("结余再分配额", "surplus")}[line]
    if fallback is not None and amount and not any(weights.values()) and any(fallback.values()):
        r.note(
            "本期无人有工作当量，按基础性绩效权重（岗位标准 × 在岗月数）分配 / nobody has "
            "equivalents in the period: shared like the base part (post base pay × months)"
        )
        weights = fallback
    r.inputs(amount=amount, weight_sum=_shown(sum(weights.values(), Fraction(0))))
    parts = _allocate(amount, weights, FEN, what)
    r.outputs(by_staff={k: {"weight": _shown(w), line: parts[k]} for k, w in weights.items()})
    return parts


def _surplus_weights(
    members: Sequence[StaffInputs], lines: _Lines, rules: DistributionRules
) -> dict[str, Fraction]:
    if rules.surplus_weights == "reward":
        return dict(lines.weight)
    return {s.staff_id: Fraction(s.personal_coefficient) * lines.share[s.staff_id] for s in members}


def _floors(
    r: StepRecorder,
    inst: InstitutionPool,
    members: Sequence[StaffInputs],
    lines: _Lines,
    rules: DistributionRules,
) -> None:
    """Floors (村医年工资不低于3.2万元 [seed 001]): top up pool pay (base+reward+surplus)."""
    lines.floor = {
        s.staff_id: _floor_of_period(s, lines.share[s.staff_id], rules)
        for s in members
        if s.floor is not None
    }
    pay = {k: lines.base[k] + lines.reward[k] + lines.surplus[k] for k in lines.weight}
    r.inputs(floor_funding=rules.floor_funding)
    if rules.floor_funding == "outside":
        lines.top_up = {k: max(NIL, lines.floor.get(k, NIL) - pay[k]) for k in pay}
        lines.contribution = dict.fromkeys(pay, NIL)
        r.note("保底补足在总量外另行支付 / top-ups are paid on top of the pool")
    else:
        lines.top_up, lines.contribution = _fund_from_pool(pay, lines.floor, lines.reward)
        r.note("保底补足由其他职工奖励性绩效按比例承担 / funded from others' reward parts pro rata")
    r.outputs(
        top_up=_sum(lines.top_up.values()),
        contribution=_sum(lines.contribution.values()),
        by_staff={
            k: {
                "floor": lines.floor.get(k),
                "pool_pay": pay[k],
                "floor_top_up": lines.top_up[k],
                "floor_contribution": lines.contribution[k],
            }
            for k in pay
            if k in lines.floor or lines.contribution[k]
        },
    )


def _floor_of_period(s: StaffInputs, share: Fraction, rules: DistributionRules) -> Decimal:
    assert s.floor is not None
    if not rules.prorate or share == 1:
        return s.floor.quantize(FEN)  # whole fen already: shown with two places
    return yuan(s.floor * share.numerator / share.denominator)


def _fund_from_pool(
    pay: Mapping[str, Decimal], floors: Mapping[str, Decimal], reward: Mapping[str, Decimal]
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Top-ups funded by cutting the others' reward parts pro rata (largest remainder).

    Whoever a cut would take below their own floor is held at it instead (contributing only
    what they have above it) and the rest is shared again among the others, until no one is
    below their floor. Refused when even all the others' reward parts cannot pay the floors.
    """
    held = {k for k, f in floors.items() if pay[k] < f}
    while True:
        # ≥ 0: whoever joins `held` later was cut by more than they have above their floor
        needed = _sum(floors[k] - pay[k] for k in held)
        donors = {k: reward[k] for k in pay if k not in held}
        if needed > _sum(donors.values()):
            _short(pay, floors, reward)
        cut = allocate(needed, donors)
        newly = {k for k in donors if k in floors and pay[k] - cut[k] < floors[k]}
        if not newly:
            break
        held |= newly
    top_up = {k: max(NIL, floors[k] - pay[k]) if k in held else NIL for k in pay}
    contribution = {k: max(NIL, pay[k] - floors[k]) if k in held else cut[k] for k in pay}
    return top_up, contribution


def _short(
    pay: Mapping[str, Decimal], floors: Mapping[str, Decimal], reward: Mapping[str, Decimal]
) -> None:
    """Refuse: Σ max(floor, pay − reward part) is more than the pool pays out."""
    least = _sum(max(floors.get(k, NIL), pay[k] - reward[k]) for k in pay)
    total = _sum(pay.values())
    raise InvalidValue(
        f"保底无法在总量内补足：至少需要 {least}，可分配 {total}（差 {least - total}）",
        f"floors cannot be funded from the pool: expected at least {least} != available "
        f"{total} ({least - total} short); use floor_funding='outside' or lower the floors",
    )


def _outside_total(
    r: StepRecorder, inst: InstitutionPool, staff: Sequence[StaffInputs]
) -> dict[str, dict[str, Decimal]]:
    """「家庭医生签约服务费、公卫医生防疫补贴不纳入绩效工资总量」: paid as given, not pooled."""
    out = {
        s.staff_id: {
            item: a.quantize(FEN) for item, a in inst.outside_total.get(s.staff_id, {}).items()
        }
        for s in staff
    }
    r.outputs(
        by_staff={k: v for k, v in out.items() if v},
        total=_sum(a for v in out.values() for a in v.values()),
    )
    r.note("不纳入绩效工资总量，照额支付 / outside the pool, paid as recorded")
    return out


def _year_end_bonus(
    r: StepRecorder, inst: InstitutionPool, staff: Sequence[StaffInputs], rules: DistributionRules
) -> dict[str, tuple[Decimal, Decimal]]:
    """「年终绩效考核奖，总额度为6万元/人（人数按在编计算），其中1万元/人由财政保障」.

    Reading (configurable): the per-head amount to each person on establishment, prorated by
    months in post when `prorate`; the director only when `director_year_end_bonus`.
    """
    r.inputs(
        per_head=inst.year_end_bonus_per_head,
        finance_per_head=inst.year_end_bonus_finance_per_head,
        director_year_end_bonus=rules.director_year_end_bonus,
    )
    out = {s.staff_id: _bonus_of(s, inst, rules) for s in staff}
    r.outputs(
        by_staff={k: {"year_end_bonus": b, "of_which_finance": f} for k, (b, f) in out.items()},
        total=_sum(b for b, _ in out.values()),
        finance=_sum(f for _, f in out.values()),
    )
    return out


def _bonus_of(
    s: StaffInputs, inst: InstitutionPool, rules: DistributionRules
) -> tuple[Decimal, Decimal]:
    director = s.staff_id == inst.director_id
    if not s.establishment or (director and not rules.director_year_end_bonus):
        return NIL, NIL
    share = _months_share(s, inst, rules)
    return (
        yuan(inst.year_end_bonus_per_head * share.numerator / share.denominator),
        yuan(inst.year_end_bonus_finance_per_head * share.numerator / share.denominator),
    )


def _share(
    s: StaffInputs,
    inst: InstitutionPool,
    lines: _Lines,
    outside: Mapping[str, Decimal],
    bonus: tuple[Decimal, Decimal],
) -> StaffShare:
    k = s.staff_id
    return StaffShare(
        staff_id=k,
        name=s.name,
        post=s.post,
        establishment=s.establishment,
        director=k == inst.director_id,
        months_share=_shown(lines.share.get(k, Fraction(0))),
        weight=_shown(lines.weight.get(k, Fraction(0))),
        base=lines.base.get(k, NIL),
        reward=lines.reward.get(k, NIL),
        surplus=lines.surplus.get(k, NIL),
        floor=lines.floor.get(k),
        floor_top_up=lines.top_up.get(k, NIL),
        floor_contribution=lines.contribution.get(k, NIL),
        outside=outside,
        year_end_bonus=bonus[0],
        year_end_bonus_finance=bonus[1],
    )


def _check(r: StepRecorder, d: Distribution) -> None:
    """Every split sums exactly to its pool (expected != computed is a defect, never rounding)."""
    t = d.totals()
    expected_pay = d.pool + d.surplus_redistributed + t["floor_top_up_outside"]
    pairs = {
        "base": (d.base_pool, t["base"]),
        "reward": (d.reward_pool, t["reward"]),
        "surplus": (d.surplus_redistributed, t["surplus"]),
        "floor_contribution": (
            t["floor_top_up"] - t["floor_top_up_outside"],
            t["floor_contribution"],
        ),
        "performance_pay": (expected_pay, t["performance_pay"]),
    }
    r.outputs(**{k: {"expected": e, "computed": c} for k, (e, c) in pairs.items()})
    wrong = [f"{k}: expected {e} != computed {c}" for k, (e, c) in pairs.items() if e != c]
    if wrong:
        raise InvalidValue("分配核对不符：" + "；".join(wrong), "check failed: " + "; ".join(wrong))


def _shown(value: Fraction) -> Decimal:
    """An exact fraction shown as a Decimal to 6 places (for the trace and the payslip)."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            WEIGHT_SHOWN, rounding=ROUND_HALF_UP
        )
