"""The Zhijiang rule of the medical-insurance fund (docs/insurance.md §4 and §5): worked
examples computed by hand here, in fen, with the arithmetic in the comments.

Parameters are the built-in `zhijiang_insurance` bundle (reserve 10%, critical illness 25 yuan
per insured person, out of area 5%, communities by January enrolment, surplus 6:3:1, within a
level by equivalents, advance ratio 1.00, the fund bears no overspend) with the overrides each
test names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.policy import ParameterTree, load_builtin_bundle
from dangliang.policy.insurance import advance_months, compute
from dangliang.policy.insurance_records import CommunityInputs, FundInputs, Member

D = Decimal
YEAR = 2024


def policy(overrides: Mapping[str, Any] | None = None) -> ParameterTree:
    """The built-in bundle, with `overrides` (path → value) from 1 January 2024."""
    tree = load_builtin_bundle("zhijiang_insurance")
    if not overrides:
        return tree
    return tree.with_overrides(overrides, on=date(YEAR, 1, 1), reference="test")


def residents(january: int) -> dict[tuple[int, str, str], int]:
    """Resident insurance enrols once a year: the same people every month."""
    return {(m, "resident", "to_60"): january for m in range(1, 13)}


# C1 (lead hospital H1): centres T1 (1,000 equivalents) and T2 (2,000), village clinics V1–V3
# (no equivalents recorded: equal parts). 30,001 insured in January. In-area claims 2,000,000.00
# in March and 3,000,000.00 in September; one out-of-area claim of 100,000.00 in May.
C1 = CommunityInputs(
    code="C1",
    name="市人民医院医共体",
    lead_hospital_code="H1",
    lead_hospital_name="市人民医院",
    members=(
        Member("T2", "乙镇卫生院", "township", D("2000")),
        Member("T1", "甲镇卫生院", "township", D("1000")),
        Member("V3", "丙村卫生室", "village", D("0")),
        Member("V1", "甲村卫生室", "village", D("0")),
        Member("V2", "乙村卫生室", "village", D("0")),
    ),
    enrolled=residents(30_001),
    spending={(3, False): 200_000_000, (9, False): 300_000_000, (5, True): 10_000_000},
)
# C2 (lead hospital H2), no members: 19,999 insured. In-area claims 4,000,000.00 in July; one
# out-of-area claim of 20,000.00 in August.
C2 = CommunityInputs(
    code="C2",
    name="市中医院医共体",
    lead_hospital_code="H2",
    lead_hospital_name="市中医院",
    enrolled=residents(19_999),
    spending={(7, False): 400_000_000, (8, True): 2_000_000},
)
REVENUE = 1_234_567_891  # 12,345,678.91


def fund(*communities: CommunityInputs, revenue: int | None = REVENUE) -> FundInputs:
    return FundInputs(YEAR, revenue, None, {c.code: c for c in communities})


def test_withholdings_and_allotments_of_the_year() -> None:
    # T = 12,345,678.91
    # reserve          = T × 10% = 1,234,567.891 → 1,234,567.89
    # critical illness = 25 × (30,001 + 19,999 = 50,000 insured in January) = 1,250,000.00
    # out of area      = T × 5% = 617,283.9455 → 617,283.95
    # to communities   = 12,345,678.91 − 1,234,567.89 − 1,250,000.00 − 617,283.95 = 9,243,827.07
    # by January enrolment, 924,382,707 fen × 30,001 / 50,000 = 554,648,111.854 (C1)
    #                                      × 19,999 / 50,000 = 369,734,595.146 (C2)
    # floors 554,648,111 + 369,734,595 = 924,382,706: the 1 fen left goes to the larger
    # remainder (.854, C1) → C1 5,546,481.12, C2 3,697,345.95
    result = compute(policy(), fund(C2, C1), Period(YEAR))
    assert result.rule == "zhijiang"
    assert result.counts == {"insured_persons": 50_000}
    assert result.figures == {
        "revenue": 1_234_567_891,
        "reserve": 123_456_789,
        "critical_illness": 125_000_000,
        "out_of_area": 61_728_395,
        "to_communities": 924_382_707,
        "unallocated": 0,
        # out of area, all communities: 100,000.00 + 20,000.00; 617,283.95 − 120,000.00
        "out_of_area_spending": 12_000_000,
        "out_of_area_balance": 49_728_395,
    }
    assert result.communities["C1"].figures["allotment"] == 554_648_112
    assert result.communities["C2"].figures["allotment"] == 369_734_595


def test_a_surplus_year_splits_6_3_1_to_the_fen_down_to_institutions() -> None:
    # C1: allotment 5,546,481.12; in-area spending 2,000,000.00 + 3,000,000.00 = 5,000,000.00
    # (the out-of-area 100,000.00 is paid from the out-of-area fund, not counted)
    # surplus 546,481.12 = 54,648,112 fen × 0.6 / 0.3 / 0.1 = 32,788,867.2 / 16,394,433.6 /
    # 5,464,811.2; floors add up to 54,648,111, the 1 fen left → largest remainder (.6, township)
    c1 = compute(policy(), fund(C1, C2), Period(YEAR)).communities["C1"]
    assert c1.figures == {
        "allotment": 554_648_112,
        "budget": 554_648_112,
        "advance": 554_648_112,
        "spending": 500_000_000,
        "spending_in_area": 500_000_000,
        "spending_out_of_area": 10_000_000,
        "balance": 54_648_112,
        "surplus": 54_648_112,
        "surplus_county": 32_788_867,
        "surplus_township": 16_394_434,
        "surplus_village": 5_464_811,
        "overspend": 0,
        "fund_bears": 0,
        "community_bears": 0,
        "final": 554_648_112,
    }
    # township 16,394,434 by equivalents 1,000 : 2,000 → 5,464,811.33 (T1), 10,929,622.67 (T2);
    #   the fen left → T2 (.67)
    # village 5,464,811, every equivalent 0 → equal thirds of 1,821,603.67; the 2 fen left go
    #   to the ties that sort first: V1, V2
    assert c1.allocation == [
        {"code": "H1", "name": "市人民医院", "level": "county", "amount_fen": 32_788_867},
        {"code": "T1", "name": "甲镇卫生院", "level": "township", "amount_fen": 5_464_811},
        {"code": "T2", "name": "乙镇卫生院", "level": "township", "amount_fen": 10_929_623},
        {"code": "V1", "name": "甲村卫生室", "level": "village", "amount_fen": 1_821_604},
        {"code": "V2", "name": "乙村卫生室", "level": "village", "amount_fen": 1_821_604},
        {"code": "V3", "name": "丙村卫生室", "level": "village", "amount_fen": 1_821_603},
    ]
    assert sum(line["amount_fen"] for line in c1.allocation) == c1.figures["surplus"]
    step = next(s for s in c1.steps if s.rule.name == "surplus_allocation")
    assert any("当量均为 0" in note for note in step.notes)


def test_a_level_without_members_goes_to_the_lead_hospital() -> None:
    # C2 with fund_share irrelevant: spending 3,000,000.00 → surplus 697,345.95 = 69,734,595 fen
    # × 0.6 / 0.3 / 0.1 = 41,840,757 / 20,920,378.5 / 6,973,459.5; floors 69,734,594, the
    # fen left → township (.5 ties with village; "township" sorts first) → 20,920,379
    # no centres, no clinics: all of it to H2
    c2 = CommunityInputs(
        code="C2",
        name="市中医院医共体",
        lead_hospital_code="H2",
        lead_hospital_name="市中医院",
        enrolled=residents(19_999),
        spending={(7, False): 300_000_000},
    )
    result = compute(policy(), fund(C1, c2), Period(YEAR)).communities["C2"]
    assert (
        result.figures["surplus_county"],
        result.figures["surplus_township"],
        result.figures["surplus_village"],
    ) == (41_840_757, 20_920_379, 6_973_459)
    assert result.allocation == [
        {"code": "H2", "name": "市中医院", "level": "county", "amount_fen": 69_734_595}
    ]


def test_an_overspend_year_the_fund_bears_its_configured_share() -> None:
    # C2: allotment 3,697,345.95, in-area spending 4,000,000.00 → overspend 302,654.05
    # (its out-of-area 20,000.00 is not counted)
    # fund share 0 (built in): the community bears all, final = the allotment
    c2 = compute(policy(), fund(C1, C2), Period(YEAR)).communities["C2"]
    assert c2.figures == {
        "allotment": 369_734_595,
        "budget": 369_734_595,
        "advance": 369_734_595,
        "spending": 400_000_000,
        "spending_in_area": 400_000_000,
        "spending_out_of_area": 2_000_000,
        "balance": -30_265_405,
        "surplus": 0,
        "surplus_county": 0,
        "surplus_township": 0,
        "surplus_village": 0,
        "overspend": 30_265_405,
        "fund_bears": 0,
        "community_bears": 30_265_405,
        "final": 369_734_595,
    }
    assert c2.allocation == []
    # fund share 0.5: 302,654.05 × 0.5 = 151,327.025 → 151,327.03; community 151,327.02;
    # final 3,697,345.95 + 151,327.03 = 3,848,672.98
    half = policy({"zhijiang.overspend.fund_share": D("0.5")})
    c2 = compute(half, fund(C1, C2), Period(YEAR)).communities["C2"]
    assert (
        c2.figures["fund_bears"],
        c2.figures["community_bears"],
        c2.figures["final"],
    ) == (15_132_703, 15_132_702, 384_867_298)


def test_a_month_and_quarters_take_equal_twelfths_the_first_months_the_extra_fen() -> None:
    # C2: 369,734,595 / 12 = 30,811,216.25: 3 fen left → January, February, March
    # Q1 budget 3 × 30,811,217 = 924,336.51; Q2 3 × 30,811,216 = 924,336.48
    # advance ratio 0.9: 369,734,595 × 0.9 = 332,761,135.5 → 332,761,136; / 12 =
    # 27,730,094.67: 8 fen left → January–August 27,730,095, September–December 27,730,094
    tree = policy({"advance.ratio": D("0.9")})
    q1 = compute(tree, fund(C1, C2), Period(YEAR, quarter=1)).communities["C2"].figures
    assert (q1["budget"], q1["advance"]) == (92_433_651, 83_190_285)
    q2 = compute(tree, fund(C1, C2), Period(YEAR, quarter=2)).communities["C2"].figures
    assert (q2["budget"], q2["advance"]) == (92_433_648, 83_190_285)
    q4 = compute(tree, fund(C1, C2), Period(YEAR, quarter=4)).communities["C2"].figures
    assert (q4["budget"], q4["advance"]) == (92_433_648, 83_190_282)
    # Q3: in-area 4,000,000.00 in July; the out-of-area 20,000.00 in August is not counted
    q3 = compute(tree, fund(C1, C2), Period(YEAR, quarter=3)).communities["C2"].figures
    assert q3 == {
        "allotment": 369_734_595,
        "budget": 92_433_648,
        "advance": 27_730_095 * 2 + 27_730_094,
        "spending": 400_000_000,
        "spending_in_area": 400_000_000,
        "spending_out_of_area": 2_000_000,
        "balance": 92_433_648 - 400_000_000,
    }
    # a month: C1 March, 554,648,112 / 12 = 46,220,676 exactly; spending 2,000,000.00
    march = compute(tree, fund(C1, C2), Period(YEAR, 3))
    assert march.period == "2024-03"
    assert march.communities["C1"].figures["budget"] == 46_220_676
    assert march.communities["C1"].figures["spending"] == 200_000_000
    # the out-of-area fund to the end of March: nothing spent yet (C1's claim is in May)
    assert march.figures["out_of_area_spending"] == 0
    # to the end of Q2: C1's 100,000.00
    q2_fund = compute(tree, fund(C1, C2), Period(YEAR, quarter=2)).figures
    assert q2_fund["out_of_area_balance"] == 61_728_395 - 10_000_000


def test_monthly_advances_add_up_to_the_years() -> None:
    tree = policy({"advance.ratio": D("0.9")})
    months = [compute(tree, fund(C1, C2), Period(YEAR, m)) for m in range(1, 13)]
    assert sum(r.communities["C2"].figures["advance"] for r in months) == 332_761_136


def test_a_year_with_nobody_enrolled_splits_equally() -> None:
    # T = 1,000.01: reserve 100.001 → 100.00; critical illness 25 × 0 = 0;
    # out of area 50.0005 → 50.00; to communities 850.01 → equal halves 425.005: the fen left
    # → A (sorts first): A 425.01, B 425.00
    a = CommunityInputs("A", "甲", "HA", "甲院")
    b = CommunityInputs("B", "乙", "HB", "乙院")
    result = compute(policy(), fund(b, a, revenue=100_001), Period(YEAR))
    assert result.counts == {"insured_persons": 0}
    assert (result.figures["reserve"], result.figures["critical_illness"]) == (10_000, 0)
    assert (result.figures["out_of_area"], result.figures["to_communities"]) == (5_000, 85_001)
    assert result.communities["A"].figures["allotment"] == 42_501
    assert result.communities["B"].figures["allotment"] == 42_500
    allot = next(s for s in result.steps if s.rule.name == "allotment")
    assert any("1月无人参保" in note for note in allot.notes)
    # no claims: the whole allotment is surplus, 6:3:1, and all of it to the lead hospital
    assert result.communities["A"].allocation == [
        {"code": "HA", "name": "甲院", "level": "county", "amount_fen": 42_501}
    ]


def test_no_communities_leaves_the_allotment_unallocated() -> None:
    result = compute(policy(), fund(revenue=100_001), Period(YEAR))
    figures = result.figures
    assert figures["unallocated"] == figures["to_communities"] == 85_001
    assert (
        figures["reserve"]
        + figures["critical_illness"]
        + figures["out_of_area"]
        + figures["unallocated"]
    ) == 100_001


def test_withholdings_are_capped_at_what_is_left() -> None:
    # T = 100.00, 1,000 insured: reserve 10.00; critical illness wants 25,000.00, 90.00 left;
    # nothing left for out of area nor the communities
    result = compute(
        policy(),
        fund(CommunityInputs("A", "甲", "HA", "甲院", enrolled=residents(1000)), revenue=10_000),
        Period(YEAR),
    )
    assert (
        result.figures["reserve"],
        result.figures["critical_illness"],
        result.figures["out_of_area"],
        result.figures["to_communities"],
    ) == (1_000, 9_000, 0, 0)


def test_missing_revenue_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        compute(policy(), fund(C1, revenue=None), Period(YEAR, quarter=1))
    assert refused.value.message_zh == "尚未录入 2024 年医保基金筹资额"


def test_split_shares_must_add_up_to_one() -> None:
    tree = policy({"zhijiang.surplus_split.village": D("0.2")})
    with pytest.raises(DomainError, match="之和应为 1"):
        compute(tree, fund(C1, C2), Period(YEAR))


def test_equal_shares_between_communities_by_parameter() -> None:
    # 924,382,707 / 2 = 462,191,353.5: the fen left → C1 (sorts first)
    tree = policy({"zhijiang.community_share": "equal"})
    result = compute(tree, fund(C1, C2), Period(YEAR, 1))
    assert result.communities["C1"].figures["allotment"] == 462_191_354
    assert result.communities["C2"].figures["allotment"] == 462_191_353


def test_the_fund_advances_quarterly_and_the_rule_is_named_first() -> None:
    assert advance_months(policy(), YEAR) == "quarterly"
    result = compute(policy(), fund(C1, C2), Period(YEAR))
    assert [s.rule.name for s in result.steps] == [
        "rule",
        "withholding",
        "allotment",
        "out_of_area_fund",
    ]
    assert [s.rule.name for s in result.communities["C1"].steps] == [
        "budget",
        "advance",
        "spending",
        "settlement",
        "surplus_allocation",
    ]
    withholding = result.steps[1]
    assert "预留10%风险金" in withholding.rule.clause
    assert withholding.outputs["reserve"] == "1234567.89"
    assert result.as_json()["communities"][0]["allocation"][0]["amount"] == "327888.67"
