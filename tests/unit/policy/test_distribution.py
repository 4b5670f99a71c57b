"""Performance pay inside an institution (docs/performance.md): largest remainder, the 60% rule,
proration, floors, exclusions, year-end bonus; hand-computed cases and hypothesis properties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.domain.errors import DomainError, InvalidValue
from dangliang.policy.distribution import distribute
from dangliang.policy.distribution_allocation import (
    EPIDEMIC_ALLOWANCE,
    FAMILY_DOCTOR_FEES,
    allocate,
    prorate,
    split_pool,
)
from dangliang.policy.distribution_records import (
    Distribution,
    DistributionRules,
    InstitutionPool,
    StaffInputs,
)
from tests.conftest import examples

D = Decimal
FEN = D("0.01")
POSTS = {"medical": D("1.2"), "nursing": D("1.0"), "public_health": D("1.1")}


def person(staff_id: str, **overrides: Any) -> StaffInputs:
    """A full-year, on-establishment medical post with coefficient 1 unless overridden."""
    fields: dict[str, Any] = {
        "staff_id": staff_id,
        "name": f"职工{staff_id}",
        "post": "medical",
        "establishment": True,
        "equivalents": D("1000"),
        "personal_coefficient": D("1"),
        "months_in_post": 12,
        "base_pay": D("10000"),
    }
    fields.update(overrides)
    return StaffInputs(**fields)


def pool(amount: str, share: str = "0.60", **overrides: Any) -> InstitutionPool:
    """An institution with every post coefficient 1 unless overridden."""
    fields: dict[str, Any] = {
        "code": "C01",
        "pool": D(amount),
        "reward_share": D(share),
        "post_coefficients": {"medical": D("1"), "nursing": D("1")},
    }
    fields.update(overrides)
    return InstitutionPool(**fields)


def lines(d: Distribution, staff_id: str) -> tuple[Decimal, ...]:
    s = d.staff[staff_id]
    return (s.base, s.reward, s.surplus, s.floor_top_up, s.floor_contribution, s.performance_pay)


# ------------------------------------------------------------------------ allocate: by hand


def test_largest_remainder_tie_is_broken_by_key() -> None:
    """1.00 in three equal parts: 33⅓ fen each → 33 fen each, 1 fen left; the three
    remainders tie (⅓), so the key that sorts first ("a") takes it, whatever the order given."""
    assert allocate(D("1.00"), {"c": D(1), "b": D(1), "a": D(1)}) == {
        "a": D("0.34"),
        "b": D("0.33"),
        "c": D("0.33"),
    }
    # 0.05 in halves: 2.5 fen each → 2 + 2, the odd fen to "x" ("x" < "y").
    assert allocate(D("0.05"), {"y": D(1), "x": D(1)}) == {"x": D("0.03"), "y": D("0.02")}
    # Sorting is by code point: "B01" < "a01" (upper case first).
    assert allocate(D("0.01"), {"a01": D(1), "B01": D(1)}) == {"a01": D("0.00"), "B01": D("0.01")}


def test_largest_remainder_goes_to_the_largest_remainder_not_the_key() -> None:
    """1.00 by 1:2: exact 33.33… and 66.66… fen → 33 + 66, 1 fen left to "b" (remainder ⅔ > ⅓)."""
    assert allocate(D("1.00"), {"a": D(1), "b": D(2)}) == {"a": D("0.33"), "b": D("0.67")}


def test_allocate_keeps_the_callers_order_and_other_quanta() -> None:
    assert list(allocate(D("10.00"), {"z": D(1), "a": D(3)})) == ["z", "a"]
    # whole yuan: 10 by 1:1:1 → 3 + 3 + 3, 1 yuan left to "a".
    assert allocate(D("10"), {"a": D(1), "b": D(1), "c": D(1)}, quantum=D("1")) == {
        "a": D(4),
        "b": D(3),
        "c": D(3),
    }


def test_allocate_refusals() -> None:
    with pytest.raises(InvalidValue, match="non-negative"):
        allocate(D("1.00"), {"a": D(1), "b": D("-0.1")})
    with pytest.raises(InvalidValue, match=r"whole number of 0\.01"):
        allocate(D("1.005"), {"a": D(1)})
    with pytest.raises(InvalidValue, match=r"whole number of 0\.01"):
        allocate(D("-1.00"), {"a": D(1)})
    with pytest.raises(InvalidValue, match="every weight is 0"):
        allocate(D("1.00"), {"a": D(0), "b": D(0)})
    with pytest.raises(InvalidValue, match="every weight is 0"):
        allocate(D("1.00"), {})
    with pytest.raises(InvalidValue, match="non-negative"):
        allocate(D("1.00"), {"a": D("NaN")})
    assert allocate(D("0.00"), {"a": D(0), "b": D(0)}) == {"a": D("0.00"), "b": D("0.00")}
    assert allocate(D("0"), {}) == {}


# ------------------------------------------------------------------------ allocate: properties

totals = st.integers(min_value=0, max_value=10**11).map(lambda n: D(n).scaleb(-2))
weights_ = st.decimals(
    min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False
)
weight_maps = st.dictionaries(st.text(min_size=1, max_size=3), weights_, min_size=1, max_size=12)


def _allocatable(total: Decimal, weights: dict[str, Decimal]) -> bool:
    return total == 0 or any(w > 0 for w in weights.values())


@settings(max_examples=examples(100), deadline=None)
@given(totals, weight_maps, st.randoms(use_true_random=False))
def test_allocate_properties(total: Decimal, weights: dict[str, Decimal], rnd: Any) -> None:
    if not _allocatable(total, weights):
        with pytest.raises(InvalidValue):
            allocate(total, weights)
        return
    parts = allocate(total, weights)
    assert sum(parts.values(), D(0)) == total  # exact
    assert set(parts) == set(weights)
    weight_sum = sum((Fraction(w) for w in weights.values()), Fraction(0))
    for key, part in parts.items():
        assert part == part.quantize(FEN) and part >= 0
        exact = Fraction(total) * Fraction(weights[key]) / weight_sum if weight_sum else 0
        assert abs(Fraction(part) - exact) < Fraction(FEN)  # within one fen of the exact share
        if weights[key] == 0:
            assert part == 0
    for a in weights:  # monotone
        for b in weights:
            if weights[a] > weights[b]:
                assert parts[a] >= parts[b]
    keys = list(weights)
    rnd.shuffle(keys)
    assert allocate(total, {k: weights[k] for k in keys}) == parts  # order-independent
    assert allocate(total, weights) == parts  # deterministic


# ------------------------------------------------------------------------ the 60% rule


def test_split_pool_at_065() -> None:
    """1,000,000.00 × 0.65 = 650,000.00 reward; base = 1,000,000.00 − 650,000.00 = 350,000.00."""
    assert split_pool(D("1000000.00"), D("0.65")) == (D("350000.00"), D("650000.00"))


def test_split_pool_rounds_the_reward_and_base_takes_the_rest() -> None:
    """100.01 × 0.65 = 65.0065 → 65.01 (half up); base = 100.01 − 65.01 = 35.00."""
    assert split_pool(D("100.01"), D("0.65")) == (D("35.00"), D("65.01"))


def test_sixty_percent_is_the_minimum_reward_share() -> None:
    """0.60 accepted: 1,000,000.00 → reward 600,000.00, base 400,000.00; 0.5999 refused."""
    assert split_pool(D("1000000.00"), D("0.60")) == (D("400000.00"), D("600000.00"))
    with pytest.raises(DomainError) as refused:
        split_pool(D("1000000.00"), D("0.5999"))
    assert "诸暨方案 二(四)2" in refused.value.message_zh
    assert "奖励性绩效工资占比绩效总额不低于60%" in refused.value.message_zh
    assert "at least 60%" in refused.value.message_en
    with pytest.raises(DomainError, match=r"0\.5999"):
        distribute(pool("1000000.00", "0.5999"), [person("A")], period="2024")
    with pytest.raises(DomainError, match=r"within 0\.60–1"):
        split_pool(D("100.00"), D("1.01"))
    # a county that sets another minimum passes it (DistributionRules.min_reward_share)
    assert split_pool(D("100.00"), D("0.55"), min_reward_share=D("0.50")) == (
        D("45.00"),
        D("55.00"),
    )


@settings(max_examples=examples(100), deadline=None)
@given(totals, st.decimals(min_value="0.60", max_value=1, places=4))
def test_split_pool_always_adds_up(total: Decimal, share: Decimal) -> None:
    base, reward = split_pool(total, share)
    assert base + reward == total and base >= 0 and reward >= 0
    assert abs(reward - total * share) <= D("0.005")


# ------------------------------------------------------------------------ proration


def test_prorate() -> None:
    assert prorate(6) == D("0.5")
    assert prorate(12) == 1 and prorate(0) == 0
    assert prorate(3, months=6) == D("0.5")
    with pytest.raises(InvalidValue, match="0–12"):
        prorate(13)
    with pytest.raises(InvalidValue):
        prorate(1, months=0)


def test_mid_year_joiner_gets_half_weight_half_base_half_bonus() -> None:
    """F all year, J joined mid-year (6 of 12 months); otherwise the same.

    pool 30,000.00 at 0.60 → reward 18,000.00, base 12,000.00.
    reward weights: F 1200 × 1 × 1 × 1 = 1200, J 1200 × 1 × 1 × 0.5 = 600
      → F 18,000 × 1200/1800 = 12,000.00, J 6,000.00.
    base weights: F 10,000 × 1 = 10,000, J 10,000 × 0.5 = 5,000 → F 8,000.00, J 4,000.00.
    year-end bonus 60,000 per establishment head: F 60,000.00 (finance 10,000.00),
      J 60,000 × 6/12 = 30,000.00 (finance 5,000.00).
    """
    inst = pool(
        "30000.00",
        year_end_bonus_per_head=D("60000"),
        year_end_bonus_finance_per_head=D("10000"),
    )
    staff = [
        person("F", equivalents=D("1200")),
        person("J", equivalents=D("1200"), months_in_post=6),
    ]
    d = distribute(inst, staff, period="2024")
    assert d.staff["J"].months_share == D("0.5")
    assert (d.staff["F"].base, d.staff["F"].reward) == (D("8000.00"), D("12000.00"))
    assert (d.staff["J"].base, d.staff["J"].reward) == (D("4000.00"), D("6000.00"))
    assert (d.staff["F"].year_end_bonus, d.staff["F"].year_end_bonus_finance) == (
        D("60000.00"),
        D("10000.00"),
    )
    assert (d.staff["J"].year_end_bonus, d.staff["J"].year_end_bonus_finance) == (
        D("30000.00"),
        D("5000.00"),
    )
    # proration off: both count fully → 9,000.00 reward and 6,000.00 base each, 60,000 bonus
    flat = distribute(inst, staff, period="2024", rules=DistributionRules(prorate=False))
    assert lines(flat, "J")[:2] == (D("6000.00"), D("9000.00")) == lines(flat, "F")[:2]
    assert flat.staff["J"].year_end_bonus == D("60000.00")


def test_floor_is_prorated_to_the_months_in_post() -> None:
    """A village doctor's 32,000 a year, 7 months in post: 32,000 × 7/12 = 18,666.666… → 18,666.67.
    Pool 10,000.00 at 1.00 to one person: pay 10,000.00, top-up 8,666.67 (paid on top)."""
    d = distribute(
        pool("10000.00", "1.00"),
        [person("V", months_in_post=7, floor=D("32000"))],
        period="2024",
        rules=DistributionRules(floor_funding="outside"),
    )
    assert d.staff["V"].floor == D("18666.67")
    assert d.staff["V"].floor_top_up == D("8666.67")
    assert d.staff["V"].performance_pay == D("18666.67")
    assert d.totals()["floor_top_up_outside"] == D("8666.67")


# ------------------------------------------------------------------------ floors


def _floor_case(**floors: Decimal) -> tuple[InstitutionPool, list[StaffInputs]]:
    """pool 100,000.00 at 0.60 → base 40,000.00, reward 60,000.00.
    base by base_pay 20,000 : 10,000 : 10,000 → A 20,000.00, B 10,000.00, V 10,000.00;
    reward by EU 3,000 : 2,000 : 1,000 → A 30,000.00, B 20,000.00, V 10,000.00."""
    staff = [
        person("A", equivalents=D("3000"), base_pay=D("20000"), floor=floors.get("A")),
        person("B", equivalents=D("2000"), floor=floors.get("B")),
        person("V", equivalents=D("1000"), floor=floors.get("V")),
    ]
    return pool("100000.00"), staff


def test_floor_top_up_is_funded_from_the_others_reward_parts() -> None:
    """V (village doctor, floor 32,000) has 10,000 + 10,000 = 20,000: top-up 12,000.00,
    taken from A and B in proportion to their reward parts 30,000 : 20,000:
    A 12,000 × 3/5 = 7,200.00, B 4,800.00.
    A = 20,000 + 30,000 − 7,200 = 42,800.00; B = 10,000 + 20,000 − 4,800 = 25,200.00;
    V = 32,000.00; 42,800 + 25,200 + 32,000 = 100,000.00, the pool."""
    inst, staff = _floor_case(V=D("32000"))
    d = distribute(inst, staff, period="2024")
    assert lines(d, "A") == (D("20000.00"), D("30000.00"), 0, 0, D("7200.00"), D("42800.00"))
    assert lines(d, "B") == (D("10000.00"), D("20000.00"), 0, 0, D("4800.00"), D("25200.00"))
    assert lines(d, "V") == (D("10000.00"), D("10000.00"), 0, D("12000.00"), 0, D("32000.00"))
    t = d.totals()
    assert (t["floor_top_up"], t["floor_contribution"]) == (D("12000.00"), D("12000.00"))
    assert t["performance_pay"] == D("100000.00") and t["reward"] == D("60000.00")
    explained = {step["rule"]: step for step in d.explain("V")}
    assert explained["floors"]["staff"]["floor_top_up"] == "12000.00"
    assert explained["floors"]["clause"] == "seed 001; configurable"
    assert explained["reward_part"]["staff"] == {"weight": "1000.000000", "reward": "10000.00"}
    assert explained["pool_split"]["outputs"] == {
        "base_pool": "40000.00",
        "reward_pool": "60000.00",
    }


def test_floor_cut_stops_at_the_contributors_own_floor() -> None:
    """As above, and B's own floor is 27,000: the 4,800 cut would leave B at 25,200, so B is
    held at 27,000 (gives 30,000 − 27,000 = 3,000.00) and A gives the other 12,000 − 3,000 =
    9,000.00: A = 50,000 − 9,000 = 41,000.00. 41,000 + 27,000 + 32,000 = 100,000.00."""
    inst, staff = _floor_case(V=D("32000"), B=D("27000"))
    d = distribute(inst, staff, period="2024")
    assert [d.staff[k].performance_pay for k in "ABV"] == [D("41000.00"), D("27000.00"), D("32000")]
    assert [d.staff[k].floor_contribution for k in "ABV"] == [D("9000.00"), D("3000.00"), 0]


def test_floor_paid_outside_the_pool() -> None:
    """floor_funding="outside": V's 12,000.00 is paid on top and reported apart; A and B keep
    50,000.00 and 30,000.00; performance pay 112,000.00 = pool 100,000 + 12,000 outside."""
    inst, staff = _floor_case(V=D("32000"))
    d = distribute(inst, staff, period="2024", rules=DistributionRules(floor_funding="outside"))
    assert [d.staff[k].performance_pay for k in "ABV"] == [D("50000.00"), D("30000.00"), D("32000")]
    t = d.totals()
    assert t["floor_top_up_outside"] == D("12000.00")
    assert t["performance_pay"] == D("112000.00")


def test_floors_the_pool_cannot_fund_are_refused() -> None:
    """V floor 75,000: at least 75,000 + A's base 20,000 + B's base 10,000 = 105,000.00 is
    needed, the pool pays 100,000.00: 5,000.00 short."""
    inst, staff = _floor_case(V=D("75000"))
    with pytest.raises(InvalidValue, match=r"expected at least 105000.00 != available 100000.00"):
        distribute(inst, staff, period="2024")


# ------------------------------------------------------------------------ exclusions


def test_outside_items_and_the_director_are_not_in_the_pool() -> None:
    """pool 10,000.00 at 1.00: base 0, reward 10,000.00 between A (EU 100) and B (EU 300):
    A 2,500.00, B 7,500.00. The director (EU 1,000, which would have taken most) gets nothing
    from the pool. Family-doctor fees (A 1,200.00, director 500.00) and the epidemic allowance
    (B 800.00) are paid on top: outside 2,500.00; A total 3,700.00; director total 500.00."""
    inst = pool(
        "10000.00",
        "1.00",
        director_id="DIR",
        outside_total={
            "A": {FAMILY_DOCTOR_FEES: D("1200.00")},
            "B": {EPIDEMIC_ALLOWANCE: D("800")},
            "DIR": {FAMILY_DOCTOR_FEES: D("500.00")},
        },
    )
    staff = [
        person("DIR", post="director", equivalents=D("1000")),
        person("A", equivalents=D("100")),
        person("B", equivalents=D("300")),
    ]
    d = distribute(inst, staff, period="2024")
    assert d.staff["A"].reward == D("2500.00") and d.staff["B"].reward == D("7500.00")
    director = d.staff["DIR"]
    assert director.director and director.performance_pay == 0 and director.weight == 0
    assert director.total == D("500.00")
    assert d.staff["A"].total == D("3700.00")
    t = d.totals()
    assert t["performance_pay"] == D("10000.00")
    assert t["outside"] == {EPIDEMIC_ALLOWANCE: D("800"), FAMILY_DOCTOR_FEES: D("1700.00")}
    assert t["outside_total"] == D("2500.00")
    assert t["total"] == D("12500.00")


# ------------------------------------------------------------------------ year-end bonus


def test_year_end_bonus_per_establishment_head() -> None:
    """60,000 per head on establishment, of which finance 10,000: E1 and E2 60,000.00 each;
    X (off establishment) and the director get none. Totals 120,000.00, finance 20,000.00,
    institution 100,000.00. With director_year_end_bonus the director gets 60,000.00 too."""
    inst = pool(
        "1000.00",
        director_id="DIR",
        year_end_bonus_per_head=D("60000"),
        year_end_bonus_finance_per_head=D("10000"),
    )
    staff = [
        person("E1"),
        person("E2"),
        person("X", establishment=False),
        person("DIR", establishment=True),
    ]
    d = distribute(inst, staff, period="2024")
    assert [d.staff[k].year_end_bonus for k in ("E1", "E2", "X", "DIR")] == [
        D("60000.00"),
        D("60000.00"),
        0,
        0,
    ]
    t = d.totals()
    assert (t["year_end_bonus"], t["year_end_bonus_finance"], t["year_end_bonus_institution"]) == (
        D("120000.00"),
        D("20000.00"),
        D("100000.00"),
    )
    with_director = distribute(
        inst, staff, period="2024", rules=DistributionRules(director_year_end_bonus=True)
    )
    assert with_director.staff["DIR"].year_end_bonus == D("60000.00")
    assert with_director.staff["DIR"].performance_pay == 0


# ------------------------------------------------------------------------ surplus


def test_surplus_share_must_lie_within_40_to_60_percent() -> None:
    """Surplus 10,000.00 at 0.45 → 4,500.00 redistributed by the reward weights
    (A EU 100, B EU 200 → 1,500.00 and 3,000.00), on top of the pool."""
    staff = [person("A", equivalents=D("100")), person("B", equivalents=D("200"))]
    for share in ("0.39", "0.61", "0.3999"):
        with pytest.raises(DomainError, match="40%–60%") as refused:
            distribute(
                pool("300.00", surplus=D("10000.00"), surplus_share=D(share)), staff, period="y"
            )
        assert "诸暨方案 二(四)2" in refused.value.message_zh
    for share in ("0.40", "0.60"):
        distribute(pool("300.00", surplus=D("10000.00"), surplus_share=D(share)), staff, period="y")
    with pytest.raises(DomainError, match="without a surplus share"):
        distribute(pool("300.00", surplus=D("10000.00")), staff, period="y")
    d = distribute(
        pool("300.00", surplus=D("10000.00"), surplus_share=D("0.45")), staff, period="y"
    )
    assert d.surplus_redistributed == D("4500.00")
    assert (d.staff["A"].surplus, d.staff["B"].surplus) == (D("1500.00"), D("3000.00"))
    assert d.totals()["performance_pay"] == D("4800.00")


def test_surplus_by_assessment_only() -> None:
    """surplus_weights="assessment": 4,500.00 by personal coefficient 1.2 : 0.8 (equivalents
    ignored) → A 2,700.00, B 1,800.00."""
    staff = [
        person("A", equivalents=D("100"), personal_coefficient=D("1.2")),
        person("B", equivalents=D("200"), personal_coefficient=D("0.8")),
    ]
    d = distribute(
        pool("300.00", surplus=D("10000.00"), surplus_share=D("0.45")),
        staff,
        period="y",
        rules=DistributionRules(surplus_weights="assessment"),
    )
    assert (d.staff["A"].surplus, d.staff["B"].surplus) == (D("2700.00"), D("1800.00"))


# ------------------------------------------------------------------------ weights and refusals


def test_post_and_personal_coefficients_scale_the_reward() -> None:
    """Reward 600.00: A medical 1.2 × EU 100 × 1.0 = 120; B nursing 1.0 × EU 100 × 0.8 = 80
    → A 600 × 120/200 = 360.00, B 240.00."""
    staff = [
        person("A", equivalents=D("100")),
        person("B", post="nursing", equivalents=D("100"), personal_coefficient=D("0.8")),
    ]
    d = distribute(pool("1000.00", post_coefficients=POSTS), staff, period="2024")
    assert (d.staff["A"].weight, d.staff["B"].weight) == (D("120"), D("80"))
    assert (d.staff["A"].reward, d.staff["B"].reward) == (D("360.00"), D("240.00"))


def test_every_problem_is_refused_at_once() -> None:
    staff = [
        person("A", post="radiology"),
        person("A"),
        person("B", months_in_post=13, equivalents=D("-1"), floor=D("1.001")),
    ]
    inst = pool("1.001", "0.5", director_id="NOBODY", outside_total={"C": {"x": D("-1")}})
    with pytest.raises(InvalidValue) as refused:
        distribute(inst, staff, period="2024")
    message = refused.value.message_en
    for expected in (
        "performance-pay total 1.001",
        "reward share 0.5",
        "staff repeated",
        "director is not listed",
        "post 'radiology'",
        "months in post 13",
        "B equivalents -1",
        "B floor 1.001",
        "unknown staff C",
        "C x -1",
    ):
        assert expected in message
    with pytest.raises(InvalidValue, match="floor_funding"):
        DistributionRules(floor_funding="somewhere")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="every weight is 0"):
        distribute(
            pool("100.00"), [person("A", equivalents=D("0"), base_pay=D("0"))], period="2024"
        )


def test_without_any_equivalents_the_reward_part_is_shared_like_the_base_part() -> None:
    """Nobody recorded work this period: reward 60.00 of 100.00 is shared by base pay
    (10,000 : 30,000 → 15.00 : 45.00), not left undistributed."""
    staff = [
        person("A", equivalents=D("0")),
        person("B", equivalents=D("0"), base_pay=D("30000")),
    ]
    d = distribute(pool("100.00"), staff, period="2024")
    assert (d.staff["A"].reward, d.staff["B"].reward) == (D("15.00"), D("45.00"))
    assert (d.staff["A"].base, d.staff["B"].base) == (D("10.00"), D("30.00"))
    step = next(s for s in d.steps if s.rule.name == "reward_part")
    assert any("nobody has equivalents" in note for note in step.notes)


# ------------------------------------------------------------------------ distribute: properties


@st.composite
def institutions(draw: st.DrawFn) -> tuple[InstitutionPool, list[StaffInputs]]:
    n = draw(st.integers(min_value=1, max_value=8))
    amount = draw(st.integers(0, 10**9).map(lambda f: D(f).scaleb(-2)))
    # floors near the average pay (0–250% of pool / n): met, topped up, or not fundable
    floors = st.integers(0, 250).map(lambda p: (amount * p / 100 / n).quantize(FEN))
    staff = [
        StaffInputs(
            staff_id=f"S{i:02d}",
            name=f"职工{i}",
            post=draw(st.sampled_from(sorted(POSTS))),
            establishment=draw(st.booleans()),
            equivalents=draw(st.decimals(min_value=1, max_value=10**5, places=4)),
            personal_coefficient=draw(st.decimals(min_value="0.1", max_value=2, places=2)),
            months_in_post=draw(st.integers(min_value=1, max_value=12)),
            base_pay=draw(st.decimals(min_value=1, max_value=10**5, places=2)),
            floor=draw(st.none() | floors | floors),  # two in three have a floor
        )
        for i in range(n)
    ]
    director = draw(st.none() | st.sampled_from([s.staff_id for s in staff])) if n > 1 else None
    surplus = draw(st.integers(0, 10**8).map(lambda f: D(f).scaleb(-2)))
    inst = InstitutionPool(
        code="C01",
        pool=amount,
        reward_share=draw(st.decimals(min_value="0.60", max_value=1, places=4)),
        post_coefficients=POSTS,
        outside_total={
            s.staff_id: {FAMILY_DOCTOR_FEES: D(draw(st.integers(0, 10**6))).scaleb(-2)}
            for s in staff
            if draw(st.booleans())
        },
        surplus=surplus,
        surplus_share=draw(st.decimals(min_value="0.40", max_value="0.60", places=4)),
        year_end_bonus_per_head=D("60000"),
        year_end_bonus_finance_per_head=D("10000"),
        director_id=director,
    )
    return inst, staff


@settings(max_examples=examples(100), deadline=None)
@given(institutions(), st.booleans())
def test_distribute_properties(case: tuple[InstitutionPool, list[StaffInputs]], prr: bool) -> None:
    inst, staff = case
    outside = distribute(
        inst, staff, period="y", rules=DistributionRules(floor_funding="outside", prorate=prr)
    )
    _assert_exact(outside)
    t = outside.totals()
    assert t["floor_contribution"] == 0
    assert t["performance_pay"] == inst.pool + outside.surplus_redistributed + t["floor_top_up"]
    members = [s for s in outside.staff.values() if not s.director]
    least = sum((max(s.floor or 0, s.base + s.surplus) for s in members), D(0))
    available = inst.pool + outside.surplus_redistributed
    try:
        funded = distribute(inst, staff, period="y", rules=DistributionRules(prorate=prr))
    except InvalidValue as refused:
        assert least > available, refused  # refused only when no cut can pay every floor
        assert "cannot be funded" in refused.message_en
        return
    assert least <= available
    _assert_exact(funded)
    t = funded.totals()
    assert t["floor_top_up"] == t["floor_contribution"]
    assert t["performance_pay"] == available
    for k, s in funded.staff.items():  # floors change neither base, reward nor surplus lines
        assert (s.base, s.reward, s.surplus) == (
            outside.staff[k].base,
            outside.staff[k].reward,
            outside.staff[k].surplus,
        )
        assert 0 <= s.floor_contribution <= s.reward


def _assert_exact(d: Distribution) -> None:
    t = d.totals()
    assert t["base"] == d.base_pool and t["reward"] == d.reward_pool
    assert d.base_pool + d.reward_pool == d.pool
    assert t["surplus"] == d.surplus_redistributed
    for s in d.staff.values():
        if s.director:
            assert (s.base, s.reward, s.surplus, s.floor_top_up, s.year_end_bonus) == (0,) * 5
        elif s.floor is not None:
            assert s.performance_pay >= s.floor  # floors honoured
        if not s.establishment:
            assert s.year_end_bonus == 0
        for amount in (s.base, s.reward, s.surplus, s.floor_top_up, s.year_end_bonus):
            assert amount == amount.quantize(FEN) and amount >= 0
    assert t["total"] == t["performance_pay"] + t["outside_total"] + t["year_end_bonus"]
