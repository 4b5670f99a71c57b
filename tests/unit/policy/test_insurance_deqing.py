"""The De Qing rule of the medical-insurance fund (docs/insurance.md §3 and §5): worked
examples computed by hand here, in fen, with the arithmetic in the comments.

Parameters are the built-in `deqing_insurance` bundle (weights 1.00 / 2.50 / 0.60 / 1.60, fixed
standards 150 / 375 / 90 / 240 yuan per person-month, surplus 70% + 30%, overspend base 85%,
share 1.00 at score 0 → 0.00 at score 100, growth 2024 = 5%, funding cap 1.00) with the
overrides each test names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.policy import ParameterTree, load_builtin_bundle
from dangliang.policy.insurance import advance_months, compute
from dangliang.policy.insurance_records import CommunityInputs, FundInputs

D = Decimal
YEAR = 2024
YEAR_KEYS = {
    "surplus",
    "retained_direct",
    "retained_assessed",
    "returned_to_fund",
    "overspend",
    "overspend_base",
    "community_bears",
    "fund_bears",
    "final",
}


def policy(overrides: Mapping[str, Any] | None = None) -> ParameterTree:
    """The built-in bundle, with `overrides` (path → value) from 1 January 2024."""
    tree = load_builtin_bundle("deqing_insurance")
    if not overrides:
        return tree
    return tree.with_overrides(overrides, on=date(YEAR, 1, 1), reference="test")


FIXED = {"deqing.standards.mode": "fixed"}


def counts(months: Iterable[int], **cells: int) -> dict[tuple[int, str, str], int]:
    """counts(range(1, 13), employee_to_60=100) → {(1, "employee", "to_60"): 100, …}."""
    out = {}
    for m in months:
        for name, n in cells.items():
            kind, band = name.split("_", 1)
            out[(m, kind, band)] = n
    return out


def community(code: str, score: str | None = "60", **fields: Any) -> CommunityInputs:
    return CommunityInputs(
        code=code,
        name=f"{code} 医共体",
        lead_hospital_code=f"{code}-H",
        lead_hospital_name=f"{code} 牵头医院",
        score=None if score is None else D(score),
        **fields,
    )


def fund(
    *communities: CommunityInputs, prior: int | None = None, revenue: int | None = None
) -> FundInputs:
    return FundInputs(YEAR, revenue, prior, {c.code: c for c in communities})


# Community A (fixed standards): 100 employees ≤ 60, 20 over 60, 200 residents ≤ 60, 50 over 60.
# One employee born 1963-06-15 turns 61 on 2024-06-15: aged 61 on 1 July, so over_60 from July.
A_ENROLLED = {
    **counts(
        range(1, 7),
        employee_to_60=100,
        employee_over_60=20,
        resident_to_60=200,
        resident_over_60=50,
    ),
    **counts(
        range(7, 13),
        employee_to_60=99,
        employee_over_60=21,
        resident_to_60=200,
        resident_over_60=50,
    ),
}
# In-area 45,000.00 a month; one out-of-area claim of 12,345.67 settled in March.
A_SPENDING = {**{(m, False): 4_500_000 for m in range(1, 13)}, (3, True): 1_234_567}


def a_year(score: str) -> dict[str, int]:
    a = community("A", score, enrolled=A_ENROLLED, spending=A_SPENDING)
    return compute(policy(FIXED), fund(a), Period(YEAR)).communities["A"].figures


def test_fixed_standards_a_birthday_moves_a_person_to_over_60_from_the_next_month() -> None:
    # Jan–Jun: 100 × 150 + 20 × 375 + 200 × 90 + 50 × 240 = 15,000 + 7,500 + 18,000 + 12,000
    #        = 52,500.00 a month
    # Jul–Dec: 99 × 150 + 21 × 375 + …            = 52,500 − 150 + 375 = 52,725.00 a month
    a = community("A", enrolled=A_ENROLLED, spending=A_SPENDING)
    tree = policy(FIXED)
    june = compute(tree, fund(a), Period(YEAR, 6)).communities["A"].figures
    july = compute(tree, fund(a), Period(YEAR, 7)).communities["A"].figures
    assert (june["budget"], july["budget"]) == (5_250_000, 5_272_500)
    # the year: 6 × 52,500 + 6 × 52,725 = 315,000 + 316,350 = 631,350.00
    assert a_year("60")["budget"] == 63_135_000


def test_a_surplus_year_at_scores_0_60_and_100() -> None:
    # budget 631,350.00; spending 12 × 45,000 + 12,345.67 (out of area counts) = 552,345.67
    # surplus = 631,350.00 − 552,345.67 = 79,004.33
    # kept directly = 79,004.33 × 0.70 = 55,303.031 → 55,303.03
    common = {
        "budget": 63_135_000,
        "spending": 55_234_567,
        "spending_in_area": 54_000_000,
        "spending_out_of_area": 1_234_567,
        "balance": 7_900_433,
        "advance": 63_135_000,  # advance ratio 1.00: the whole budget
        "surplus": 7_900_433,
        "retained_direct": 5_530_303,
        "overspend": 0,
        "overspend_base": 0,
        "community_bears": 0,
        "fund_bears": 0,
    }
    # score 60: after assessment 79,004.33 × 0.30 × 0.60 = 14,220.7794 → 14,220.78
    #   back to the fund 79,004.33 − 55,303.03 − 14,220.78 = 9,480.52
    #   final = spending + kept = 552,345.67 + 55,303.03 + 14,220.78 = 621,869.48
    assert a_year("60") == {
        **common,
        "retained_assessed": 1_422_078,
        "returned_to_fund": 948_052,
        "final": 62_186_948,
    }
    # score 0: nothing after assessment; back 79,004.33 − 55,303.03 = 23,701.30;
    #   final 552,345.67 + 55,303.03 = 607,648.70
    assert a_year("0") == {
        **common,
        "retained_assessed": 0,
        "returned_to_fund": 2_370_130,
        "final": 60_764_870,
    }
    # score 100: 79,004.33 × 0.30 = 23,700.299 → 23,701.30; nothing back; final = the budget
    assert a_year("100") == {
        **common,
        "retained_assessed": 2_370_130,
        "returned_to_fund": 0,
        "final": 63_135_000,
    }


# Community B (fixed standards): 300 residents ≤ 60 and 100 over 60 all year; it spends
# 55,000.00 a month in the area and one out-of-area claim of 1,234.56 in November.
B_ENROLLED = counts(range(1, 13), resident_to_60=300, resident_over_60=100)
B_SPENDING = {**{(m, False): 5_500_000 for m in range(1, 13)}, (11, True): 123_456}


def b_year(score: str) -> dict[str, int]:
    b = community("B", score, enrolled=B_ENROLLED, spending=B_SPENDING)
    return compute(policy(FIXED), fund(b), Period(YEAR)).communities["B"].figures


def test_an_overspend_year_at_scores_0_60_and_100() -> None:
    # budget 12 × (300 × 90 + 100 × 240) = 12 × 51,000 = 612,000.00
    # spending 12 × 55,000 + 1,234.56 = 661,234.56; overspend 49,234.56
    # base = 49,234.56 × 0.85 = 41,849.376 → 41,849.38
    # share(s) = 1.00 + (0.00 − 1.00) × s / 100: a better score, a smaller share
    common = {
        "budget": 61_200_000,
        "spending": 66_123_456,
        "spending_in_area": 66_000_000,
        "spending_out_of_area": 123_456,
        "balance": -4_923_456,
        "advance": 61_200_000,
        "surplus": 0,
        "retained_direct": 0,
        "retained_assessed": 0,
        "returned_to_fund": 0,
        "overspend": 4_923_456,
        "overspend_base": 4_184_938,
    }
    # score 60: share 0.40; community 41,849.38 × 0.40 = 16,739.752 → 16,739.75
    #   fund 49,234.56 − 16,739.75 = 32,494.81; final 612,000.00 + 32,494.81 = 644,494.81
    assert b_year("60") == {
        **common,
        "community_bears": 1_673_975,
        "fund_bears": 3_249_481,
        "final": 64_449_481,
    }
    # score 0: share 1.00; community 41,849.38; fund 7,385.18; final 619,385.18
    assert b_year("0") == {
        **common,
        "community_bears": 4_184_938,
        "fund_bears": 738_518,
        "final": 61_938_518,
    }
    # score 100: share 0; the fund bears it all; final = spending 661,234.56
    assert b_year("100") == {
        **common,
        "community_bears": 0,
        "fund_bears": 4_923_456,
        "final": 66_123_456,
    }


def test_derived_standards_share_the_budget_total_by_weight_and_january_enrolment() -> None:
    # B = 1,000,000.00 × (1 + 0.05) = 1,050,000.00, capped at revenue 1,020,000.00 × 1.00
    # January, both communities: employee ≤ 60 100, > 60 20; resident ≤ 60 200 + 300 = 500,
    # > 60 50 + 100 = 150; weighted person-months
    #   12 × (100 × 1.00 + 20 × 2.50 + 500 × 0.60 + 150 × 1.60) = 12 × 690 = 8,280
    # standards (fen per person-month) = 102,000,000 × w / 8,280:
    #   employee ≤ 60 12,318.84 → 123.19   employee > 60 30,797.10 → 307.97
    #   resident ≤ 60  7,391.30 →  73.91   resident > 60 19,710.14 → 197.10
    # A in January: 100 × 123.19 + 20 × 307.97 + 200 × 73.91 + 50 × 197.10 = 43,115.40
    # B in January: 300 × 73.91 + 100 × 197.10 = 41,883.00
    a = community("A", enrolled=A_ENROLLED, spending=A_SPENDING)
    b = community("B", enrolled=B_ENROLLED, spending=B_SPENDING)
    inputs = fund(a, b, prior=100_000_000, revenue=102_000_000)
    result = compute(policy(), inputs, Period(YEAR, 1))
    assert result.rule == "deqing"
    assert result.figures == {
        "prior_spending": 100_000_000,
        "budget_total": 102_000_000,
        "revenue": 102_000_000,
        "budget": 4_311_540 + 4_188_300,
        "spending": 4_500_000 + 5_500_000,
    }
    assert result.communities["A"].figures["budget"] == 4_311_540
    assert result.communities["B"].figures["budget"] == 4_188_300
    assert result.counts == {"insured_persons": 370 + 400}
    standards = next(s for s in result.steps if s.rule.name == "standards")
    assert standards.outputs["standards"] == {
        "employee.to_60": "123.19",
        "employee.over_60": "307.97",
        "resident.to_60": "73.91",
        "resident.over_60": "197.10",
    }
    assert {p.path for p in standards.parameters} == {
        f"deqing.standards.weights.{t}.{b}"
        for t in ("employee", "resident")
        for b in ("to_60", "over_60")
    }
    # the year follows the monthly enrolment, not January's: A's employee turning 61 moves to
    # over_60 in July (+307.97 − 123.19 = +184.78 a month), so
    # 12 × 41,883.00 + 6 × 43,115.40 + 6 × 43,300.18 = 1,021,089.48 (B: 1,020,000.00)
    year = compute(policy(), inputs, Period(YEAR))
    assert year.figures["budget"] == 102_108_948


def test_derived_standards_without_a_cap_follow_the_growth_rate() -> None:
    # no cap: B = 1,050,000.00; employee ≤ 60 = 105,000,000 / 8,280 = 12,681.16 → 126.81,
    # > 60 31,702.90 → 317.03, resident ≤ 60 7,608.70 → 76.09, > 60 20,289.86 → 202.90
    # A in January: 100 × 126.81 + 20 × 317.03 + 200 × 76.09 + 50 × 202.90 = 44,384.60
    a = community("A", enrolled=A_ENROLLED)
    b = community("B", enrolled=B_ENROLLED)
    for tree, revenue in ((policy({"deqing.funding_cap": None}), 102_000_000), (policy(), None)):
        result = compute(tree, fund(a, b, prior=100_000_000, revenue=revenue), Period(YEAR, 1))
        assert result.figures["budget_total"] == 105_000_000
        assert result.communities["A"].figures["budget"] == 4_438_460


def test_derived_standards_need_last_years_spending() -> None:
    a = community("A", enrolled=A_ENROLLED)
    with pytest.raises(DomainError, match="上年度基金支出未知"):
        compute(policy(), fund(a, prior=None), Period(YEAR, 1))
    # fixed standards do not need it
    assert compute(policy(FIXED), fund(a), Period(YEAR, 1)).figures["prior_spending"] == 0


def test_a_month_and_a_quarter() -> None:
    # advance ratio 0.85: March 52,500.00 × 0.85 = 44,625.00
    # March: spending 45,000.00 + 12,345.67 (out of area) = 57,345.67; balance −4,845.67
    a = community("A", None, enrolled=A_ENROLLED, spending=A_SPENDING)  # no score: not needed
    tree = policy({**FIXED, "advance.ratio": D("0.85")})
    march = compute(tree, fund(a), Period(YEAR, 3))
    assert march.period == "2024-03"
    assert march.communities["A"].figures == {
        "budget": 5_250_000,
        "spending": 5_734_567,
        "spending_in_area": 4_500_000,
        "spending_out_of_area": 1_234_567,
        "balance": -484_567,
        "advance": 4_462_500,
    }
    # Q3 (July–September, after the birthday): budget 3 × 52,725.00 = 158,175.00
    # advance 3 × (52,725.00 × 0.85 = 44,816.25) = 134,448.75; spending 3 × 45,000.00
    q3 = compute(tree, fund(a), Period(YEAR, quarter=3))
    assert q3.period == "2024-Q3"
    assert q3.communities["A"].figures == {
        "budget": 15_817_500,
        "spending": 13_500_000,
        "spending_in_area": 13_500_000,
        "spending_out_of_area": 0,
        "balance": 2_317_500,
        "advance": 13_444_875,
    }
    assert YEAR_KEYS.isdisjoint(q3.communities["A"].figures)


def test_a_year_with_nobody_enrolled_has_zero_standards_and_every_key() -> None:
    a = community("A")
    result = compute(policy(), fund(a, prior=100_000_000, revenue=0), Period(YEAR))
    figures = result.communities["A"].figures
    assert set(figures) == YEAR_KEYS | {
        "budget",
        "spending",
        "spending_in_area",
        "spending_out_of_area",
        "balance",
        "advance",
    }
    assert set(figures.values()) == {0}
    standards = next(s for s in result.steps if s.rule.name == "standards")
    assert standards.outputs["standards"]["employee.to_60"] == "0.00"
    assert any("1月无参保人数" in note for note in standards.notes)
    # capped at revenue 0 × 1.00
    assert result.figures["budget_total"] == 0
    assert result.counts == {"insured_persons": 0}


def test_a_year_refuses_communities_without_a_score_naming_each() -> None:
    a, b, c = community("A", None), community("B", None), community("C", "80")
    with pytest.raises(DomainError) as refused:
        compute(policy(FIXED), fund(c, b, a), Period(YEAR))
    assert refused.value.message_zh == (
        "医共体 A 尚无 2024 年度考核得分；医共体 B 尚无 2024 年度考核得分"
    )


def test_surplus_shares_must_add_up_to_one() -> None:
    a = community("A", enrolled=A_ENROLLED, spending=A_SPENDING)
    tree = policy({**FIXED, "deqing.surplus.assessed_share": D("0.20")})
    with pytest.raises(DomainError, match="之和应为 1"):
        compute(tree, fund(a), Period(YEAR))


def test_half_fen_on_both_kept_parts_never_keeps_more_than_the_surplus() -> None:
    # budget 150.00 (one employee ≤ 60 in January), spending 149.95: surplus 0.05;
    # 0.035 → 0.04 kept directly, 0.015 → 0.02 after assessment at 100 would be
    # 0.06 > 0.05: the assessed part is cut to 0.01, nothing back to the fund
    a = community(
        "A", "100", enrolled=counts([1], employee_to_60=1), spending={(1, False): 15_000 - 5}
    )
    figures = compute(policy(FIXED), fund(a), Period(YEAR)).communities["A"].figures
    assert (figures["surplus"], figures["retained_direct"], figures["retained_assessed"]) == (
        5,
        4,
        1,
    )
    assert figures["returned_to_fund"] == 0


def test_every_step_names_its_rule_and_cites_the_minutes() -> None:
    a = community("A", enrolled=A_ENROLLED, spending=A_SPENDING)
    result = compute(policy(), fund(a, prior=100_000_000, revenue=None), Period(YEAR))
    assert [s.rule.name for s in result.steps] == ["rule", "budget_total", "standards"]
    assert [s.rule.name for s in result.communities["A"].steps] == [
        "budget",
        "spending",
        "advance",
        "settlement",
    ]
    settle = result.communities["A"].steps[-1]
    assert "结余部分的70%直接留用" in settle.rule.clause
    assert {p.path for p in settle.parameters} == {
        "deqing.surplus.direct_share",
        "deqing.surplus.assessed_share",
    }
    json = result.as_json()
    assert json["figures"]["budget_total"] == "1050000.00"  # no revenue: not capped


def test_the_fund_advances_monthly() -> None:
    assert advance_months(policy(), YEAR) == "monthly"
