"""Performance pay inside an institution (机构内部绩效工资分配): docs/performance.md, the pure core.

The approved performance-pay total (绩效工资总量) of one institution for one period is split
into a base part (基础性绩效) and a reward part (奖励性绩效), and each is divided among the
staff to the fen so that **the parts add up exactly to the pool** (largest remainder). Pure:
no storage, no clock; the application gathers the inputs and keeps the result.

Policy [诸暨方案 二(四)2; for floors 枝江「待遇留」]:

- 「在奖励性绩效工资占比绩效总额不低于60%的前提下，自主确定基础性绩效工资和奖励性绩效工资比例」:
  `split_pool` refuses a reward share below `DistributionRules.min_reward_share` (0.60).
- 「以工作当量和绩效考核为主要依据」: a person's reward weight is
  `equivalents × personal coefficient × post coefficient × months-in-post share`.
- 「收支结余（不含财政专项补助）的40%—60%根据综合考核结果进行再分配」: the redistributed
  surplus is `surplus × surplus_share`, the share within `DistributionRules.surplus_share_range`.
- 「家庭医生签约服务费、公卫医生防疫补贴不纳入绩效工资总量」: paid per person, outside the pool.
- 「年终绩效考核奖，总额度为6万元/人（人数按在编计算），其中1万元/人由财政保障」.
- 「院长（主任）年薪在单位绩效工资总量外单列核定」: the director takes no share of the pool.
- 村医年工资不低于3.2万元 [枝江「待遇留」]: a floor per person, topped up (see `FLOOR_FUNDING`).

Readings where the documents are silent (each one an option of `DistributionRules`, or a
value the caller passes; the defaults are illustrative, not official):

- The minimum reward share and the surplus range are module constants (`MIN_REWARD_SHARE`,
  `SURPLUS_SHARE_RANGE`) carried by `DistributionRules`; the caller may pass other values read
  from its policy bundle (proposed paths: `performance_pay.min_reward_share`,
  `performance_pay.surplus_share_min`, `performance_pay.surplus_share_max`).
- Base part: divided in proportion to `base_pay × months share` ("fixed part by
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

Rounding (docs/compensation.md, rounding): ROUND_HALF_UP to the fen at named steps only: the
reward part of the pool, the redistributed surplus, a prorated floor, a prorated year-end
bonus. Every other amount is a largest-remainder split of a whole number of fen, so sums are
exact.

This module runs the distribution and checks its inputs; the constants, largest remainder,
pool split and proration are in `policy.distribution_allocation`, the inputs and results in
`policy.distribution_records`, and the rule steps in `policy.distribution_steps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from dangliang.policy.distribution_allocation import (
    RULES,
    _refuse,
    money_problems,
    months_problems,
    number_problems,
    reward_share_problems,
    surplus_share_problems,
)
from dangliang.policy.distribution_records import (
    Distribution,
    DistributionRules,
    InstitutionPool,
    StaffInputs,
)
from dangliang.policy.distribution_steps import (
    _base_part,
    _check,
    _floors,
    _outside_total,
    _pool_split,
    _share,
    _surplus,
    _surplus_weights,
    _weights,
    _year_end_bonus,
    by_weight,
)
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.subsidy_records import FEN
from dangliang.policy.trace import Step, StepRecorder

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


def distribute(
    institution: InstitutionPool,
    staff: Sequence[StaffInputs],
    *,
    period: str,
    rules: DistributionRules | None = None,
) -> Distribution:
    """Distribute one institution's performance pay for a period (docs/performance.md).

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
    lines.reward = by_weight(
        trace.step("reward_part"), reward_pool, lines.weight, "reward", by_base
    )
    surplus_weights = _surplus_weights(members, lines, rules)
    lines.surplus = by_weight(
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
    problems = money_problems("绩效工资总量", "performance-pay total", inst.pool)
    problems += reward_share_problems(inst.reward_share, rules.min_reward_share)
    problems += money_problems("收支结余", "surplus", inst.surplus)
    problems += surplus_share_problems(inst.surplus, inst.surplus_share, rules.surplus_share_range)
    problems += _bonus_problems(inst.year_end_bonus_per_head, inst.year_end_bonus_finance_per_head)
    for post, coefficient in inst.post_coefficients.items():
        problems += number_problems(
            f"岗位 {post} 的系数", f"post coefficient of {post}", coefficient
        )
    problems += _staff_problems(inst, staff)
    _refuse(problems)


def _bonus_problems(per_head: Decimal, finance: Decimal) -> list[tuple[str, str]]:
    problems = money_problems("年终考核奖", "year-end bonus per head", per_head)
    problems += money_problems("年终考核奖财政部分", "year-end bonus finance share", finance)
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
            problems += money_problems(f"{staff_id} 的 {item}", f"{staff_id} {item}", amount)
    return problems


def _person_problems(inst: InstitutionPool, s: StaffInputs) -> list[tuple[str, str]]:
    who = f"{s.staff_id} "
    problems = months_problems(who, s.months_in_post, inst.months)
    problems += number_problems(f"{who}当量", f"{who}equivalents", s.equivalents)
    problems += number_problems(
        f"{who}个人系数", f"{who}personal coefficient", s.personal_coefficient
    )
    problems += number_problems(f"{who}岗位基础额", f"{who}base pay", s.base_pay)
    if s.floor is not None:
        problems += money_problems(f"{who}保底", f"{who}floor", s.floor)
    if s.staff_id != inst.director_id and s.post not in inst.post_coefficients:
        problems.append(
            (
                f"{who}的岗位 {s.post} 没有岗位系数；已有：{', '.join(inst.post_coefficients)}",
                f"{who}has post {s.post!r} without a post coefficient; known: "
                f"{', '.join(inst.post_coefficients)}",
            )
        )
    return problems
