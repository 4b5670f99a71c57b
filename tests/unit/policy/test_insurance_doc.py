"""The worked examples of docs/insurance.md §5 come out of the code: each figure the rules
compute for the examples' inputs (the same inputs as the rule tests) is printed in the page,
as the page prints money (yuan, thousands separated). A changed rule or a mistyped figure in
the docs fails here."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dangliang.domain.periods import Period
from dangliang.policy.insurance import compute
from tests.unit.policy import test_insurance_deqing as dq
from tests.unit.policy import test_insurance_zhijiang as zj

DOC = (Path(__file__).resolve().parents[3] / "docs" / "insurance.md").read_text("utf-8")
EXAMPLES = DOC[DOC.index("## 5. Worked examples") :]


def shown(fen: int) -> str:
    return format(Decimal(fen) / 100, ",.2f")


@pytest.mark.parametrize("score", ["0", "60", "100"])
def test_de_qing_surplus_and_overspend_years(score: str) -> None:
    surplus = dq.a_year(score)
    for key in (
        "budget",
        "surplus",
        "retained_direct",
        "retained_assessed",
        "returned_to_fund",
        "final",
    ):
        assert shown(surplus[key]) in EXAMPLES, (key, score, surplus[key])
    assert shown(surplus["spending"]) in EXAMPLES
    overspend = dq.b_year(score)
    for key in ("overspend", "overspend_base", "community_bears", "fund_bears", "final"):
        assert shown(overspend[key]) in EXAMPLES, (key, score, overspend[key])


def test_zhijiang_withholdings_allotments_and_the_surplus_split() -> None:
    result = compute(zj.policy(), zj.fund(zj.C1, zj.C2), Period(zj.YEAR))
    for key in (
        "revenue",
        "reserve",
        "critical_illness",
        "out_of_area",
        "to_communities",
        "out_of_area_balance",
    ):
        assert shown(result.figures[key]) in EXAMPLES, key
    c1, c2 = result.communities["C1"], result.communities["C2"]
    for key in ("allotment", "surplus", "surplus_county", "surplus_township", "surplus_village"):
        assert shown(c1.figures[key]) in EXAMPLES, key
    for line in c1.allocation:
        assert f"| {shown(line['amount_fen'])} |" in EXAMPLES, line
    assert shown(c2.figures["allotment"]) in EXAMPLES
    assert shown(c2.figures["overspend"]) in EXAMPLES
    quarters = [
        compute(
            zj.policy({"advance.ratio": Decimal("0.9")}),
            zj.fund(zj.C1, zj.C2),
            Period(2024, quarter=q),
        )
        .communities["C2"]
        .figures
        for q in (1, 2, 3, 4)
    ]
    for figures in quarters:
        assert shown(figures["budget"]) in EXAMPLES and shown(figures["advance"]) in EXAMPLES
