"""Performance pay inside an institution (机构内部绩效工资分配): the rule steps.

Each step of `policy.distribution.distribute` as a function that records its inputs and
per-person outputs through a `StepRecorder`: the pool split, the redistributed surplus, the
weights, the base, reward and surplus parts, floors (保底), outside-total items (总量外项目),
the year-end bonus (年终绩效考核奖) and the final check (分配核对); with `_Lines`, the
per-person amounts as the steps fill them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from dangliang.domain.errors import InvalidValue
from dangliang.policy.distribution_allocation import (
    NIL,
    WEIGHT_SHOWN,
    _allocate,
    allocate,
    split_pool,
)
from dangliang.policy.distribution_records import (
    Distribution,
    DistributionRules,
    InstitutionPool,
    StaffInputs,
    StaffShare,
    _sum,
)
from dangliang.policy.subsidy_records import FEN, yuan
from dangliang.policy.trace import StepRecorder


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


def by_weight(
    r: StepRecorder,
    amount: Decimal,
    weights: Mapping[str, Fraction],
    line: str,
    fallback: Mapping[str, Fraction] | None = None,
) -> dict[str, Decimal]:
    """Largest-remainder split of `amount` by `weights` (exact fractions). When nobody has
    any weight (no equivalents recorded in the period) and a `fallback` is given, the amount
    is shared by it instead, with a note: a pool is never left undistributed for want of
    records (a configurable reading; the documents are silent)."""
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
    """Floors (村医年工资不低于3.2万元 [枝江「待遇留」]): top up pool pay (base+reward+surplus)."""
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
