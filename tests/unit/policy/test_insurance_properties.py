"""Properties of the medical-insurance fund rules (docs/insurance.md) under random revenue,
enrolment, claims, communities and members: every split adds up to the fen; and the built-in
bundles load with the documents' values."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.domain.periods import Period
from dangliang.policy import ParameterTree, load_builtin_bundle
from dangliang.policy.insurance import compute
from dangliang.policy.insurance_records import (
    CELLS,
    CommunityInputs,
    FundInputs,
    Member,
    fen_of,
)
from dangliang.policy.insurance_steps import monthly_parts
from tests.conftest import examples

D = Decimal
YEAR = 2024
DOC = (Path(__file__).resolve().parents[3] / "docs" / "insurance.md").read_text(encoding="utf-8")
ratios = st.decimals(min_value=0, max_value=1, places=2)
fen = st.integers(min_value=0, max_value=10**11)


@st.composite
def communities(draw: Any) -> dict[str, CommunityInputs]:
    out = {}
    for i in range(draw(st.integers(min_value=0, max_value=4))):
        code = f"C{i}"
        members = tuple(
            Member(
                f"{code}-M{j}",
                f"成员{j}",
                draw(st.sampled_from(["township", "village"])),
                draw(st.decimals(min_value=0, max_value=10**6, places=4)),
            )
            for j in range(draw(st.integers(min_value=0, max_value=5)))
        )
        january = {cell: draw(st.integers(min_value=0, max_value=20_000)) for cell in CELLS}
        moved = draw(st.integers(min_value=1, max_value=12))  # enrolment changes from this month
        enrolled = {
            (m, t, b): january[(t, b)] + (draw(st.integers(0, 50)) if m >= moved else 0)
            for m in range(1, 13)
            for t, b in CELLS
        }
        spending = {
            (m, out_of_area): draw(st.integers(min_value=0, max_value=10**9))
            for m in range(1, 13)
            for out_of_area in (False, True)
        }
        out[code] = CommunityInputs(
            code=code,
            name=f"医共体{i}",
            lead_hospital_code=f"{code}-H",
            lead_hospital_name=f"牵头医院{i}",
            members=members,
            score=draw(st.decimals(min_value=0, max_value=100, places=1)),
            enrolled=enrolled,
            spending=spending,
        )
    return out


def overridden(name: str, overrides: dict[str, Any]) -> ParameterTree:
    return load_builtin_bundle(name).with_overrides(
        overrides, on=date(YEAR, 1, 1), reference="property"
    )


@settings(max_examples=examples(30), deadline=None)
@given(
    revenue=fen,
    groups=communities(),
    reserve=ratios,
    out_of_area=ratios,
    per_head=st.decimals(min_value=0, max_value=200, places=2),
    advance=ratios,
    share_mode=st.sampled_from(["enrolled", "equal"]),
    level_mode=st.sampled_from(["equivalents", "equal"]),
    fund_share=ratios,
)
def test_zhijiang_every_fen_of_the_revenue_is_accounted_for(
    revenue: int,
    groups: dict[str, CommunityInputs],
    reserve: Decimal,
    out_of_area: Decimal,
    per_head: Decimal,
    advance: Decimal,
    share_mode: str,
    level_mode: str,
    fund_share: Decimal,
) -> None:
    tree = overridden(
        "zhijiang_insurance",
        {
            "zhijiang.reserve_ratio": reserve,
            "zhijiang.out_of_area_ratio": out_of_area,
            "zhijiang.critical_illness_per_head": per_head,
            "advance.ratio": advance,
            "zhijiang.community_share": share_mode,
            "zhijiang.surplus_allocation.township": level_mode,
            "zhijiang.surplus_allocation.village": level_mode,
            "zhijiang.overspend.fund_share": fund_share,
        },
    )
    fund = FundInputs(YEAR, revenue, None, groups)
    year = compute(tree, fund, Period(YEAR))
    f = year.figures
    allotments = sum(c.figures["allotment"] for c in year.communities.values())
    assert (
        f["reserve"] + f["critical_illness"] + f["out_of_area"] + allotments + f["unallocated"]
        == revenue
    )
    assert min(f["reserve"], f["critical_illness"], f["out_of_area"], f["to_communities"]) >= 0
    quarters = [compute(tree, fund, Period(YEAR, quarter=q)) for q in (1, 2, 3, 4)]
    for code, c in year.communities.items():
        n = c.figures["allotment"]
        if c.figures["surplus"]:
            assert sum(line["amount_fen"] for line in c.allocation) == c.figures["surplus"]
            assert all(line["amount_fen"] >= 0 for line in c.allocation)
        assert (
            c.figures["surplus_county"]
            + c.figures["surplus_township"]
            + c.figures["surplus_village"]
            == c.figures["surplus"]
        )
        assert c.figures["fund_bears"] + c.figures["community_bears"] == c.figures["overspend"]
        assert c.figures["final"] == n + c.figures["fund_bears"]
        # the year's advances, four quarters of them, and the budget, both add up exactly
        advance_total = fen_of(D(n) / 100 * advance)
        assert c.figures["advance"] == advance_total
        assert sum(q.communities[code].figures["advance"] for q in quarters) == advance_total
        assert sum(q.communities[code].figures["budget"] for q in quarters) == n


@given(total=st.integers(min_value=0, max_value=10**12))
def test_twelve_monthly_parts_add_up_and_differ_by_at_most_a_fen(total: int) -> None:
    parts = monthly_parts(total)
    assert list(parts) == list(range(1, 13))
    assert sum(parts.values()) == total
    assert max(parts.values()) - min(parts.values()) <= 1
    assert list(parts.values()) == sorted(parts.values(), reverse=True)  # the extra fen first


@settings(max_examples=examples(30), deadline=None)
@given(
    groups=communities(),
    prior=fen,
    revenue=st.one_of(st.none(), fen),
    mode=st.sampled_from(["derived", "fixed"]),
    direct=ratios,
    base_share=ratios,
    at_0=ratios,
    at_100=ratios,
)
def test_deqing_surplus_and_overspend_are_shared_exactly(
    groups: dict[str, CommunityInputs],
    prior: int,
    revenue: int | None,
    mode: str,
    direct: Decimal,
    base_share: Decimal,
    at_0: Decimal,
    at_100: Decimal,
) -> None:
    tree = overridden(
        "deqing_insurance",
        {
            "deqing.standards.mode": mode,
            "deqing.surplus.direct_share": direct,
            "deqing.surplus.assessed_share": 1 - direct,
            "deqing.overspend.base_share": base_share,
            "deqing.overspend.share_at_0": at_0,
            "deqing.overspend.share_at_100": at_100,
        },
    )
    fund = FundInputs(YEAR, revenue, prior, groups)
    year = compute(tree, fund, Period(YEAR))
    months = [compute(tree, fund, Period(YEAR, m)) for m in range(1, 13)]
    for code, c in year.communities.items():
        f = c.figures
        assert f["retained_direct"] + f["retained_assessed"] + f["returned_to_fund"] == f["surplus"]
        assert min(f["retained_direct"], f["retained_assessed"], f["returned_to_fund"]) >= 0
        assert f["community_bears"] + f["fund_bears"] == f["overspend"]
        assert f["balance"] == f["budget"] - f["spending"]
        assert (f["surplus"] == 0) or (f["overspend"] == 0)
        assert (
            f["final"]
            == f["spending"] + f["retained_direct"] + f["retained_assessed"] - f["community_bears"]
        )
        # the year is its twelve months: budgets, advances and spending add up
        for key in ("budget", "advance", "spending"):
            assert sum(m.communities[code].figures[key] for m in months) == f[key]
    assert year.figures["budget"] == sum(c.figures["budget"] for c in year.communities.values())


def test_the_built_in_insurance_bundles_load_with_the_documents_values() -> None:
    deqing = load_builtin_bundle("deqing_insurance")
    zhijiang = load_builtin_bundle("zhijiang_insurance")
    assert deqing.metadata["scheme"] == zhijiang.metadata["scheme"] == "insurance"
    growth = {
        year: deqing.get("deqing.growth_rate", date(year, 1, 1)).as_decimal()
        for year in range(2018, 2024)
    }
    # 德清县卫生健康局《持续创新、深化拓展 推进基层卫生健康事业高质量发展》, 总额预算增长 (%)
    assert growth == {
        2018: D("0.07"),
        2019: D("0.06"),
        2020: D("0.06"),
        2021: D("0.06"),
        2022: D("0.06"),
        2023: D("0.049"),
    }
    on = date(2024, 1, 1)
    assert deqing.get("rule", on).as_text() == "deqing"
    assert deqing.get("advance.frequency", on).as_text() == "monthly"
    assert deqing.get("deqing.surplus.direct_share", on).as_decimal() == D("0.70")
    assert deqing.get("deqing.surplus.assessed_share", on).as_decimal() == D("0.30")
    assert deqing.get("deqing.overspend.base_share", on).as_decimal() == D("0.85")
    assert zhijiang.get("rule", on).as_text() == "zhijiang"
    assert zhijiang.get("advance.frequency", on).as_text() == "quarterly"
    assert zhijiang.get("zhijiang.reserve_ratio", on).as_decimal() == D("0.10")
    assert zhijiang.get("zhijiang.critical_illness_per_head", on).as_decimal() == D("25")
    assert zhijiang.get("zhijiang.out_of_area_ratio", on).as_decimal() == D("0.05")
    assert [
        zhijiang.get(f"zhijiang.surplus_split.{level}", on).as_decimal()
        for level in ("county", "township", "village")
    ] == [D("0.6"), D("0.3"), D("0.1")]
    for tree in (deqing, zhijiang):
        for path in tree:
            for dated in tree.parameter(path).values:
                assert "seeds/" not in dated.reference and "DOMAIN.md" not in dated.reference


def test_docs_list_every_parameter_of_both_bundles_with_its_unit() -> None:
    for name in ("deqing_insurance", "zhijiang_insurance"):
        tree = load_builtin_bundle(name)
        for path in tree:
            unit = tree.parameter(path).unit
            row = re.compile(rf"^\| `{re.escape(path)}` \| {re.escape(unit)} \|", re.MULTILINE)
            assert row.search(DOC), f"docs/insurance.md has no row for {name}: {path} ({unit})"
