"""The overview's and the institution page's builders, on hand-made application JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dangliang.web import dashboards as dash
from dangliang.web import institution_views as views
from dangliang.web import links

INSTITUTIONS = {
    "C01": ("township_health_centre", None),
    "C01V01": ("village_clinic", "C01"),
    "C01V02": ("village_clinic", "C01"),
    "C02": ("community_health_centre", None),
}


def entry(code: str, bm: str, ph: str, **amounts: Any) -> dict[str, Any]:
    components = {
        "basic_medical": amounts.get("basic_medical", "0"),
        "basic_public_health": amounts.get("basic_public_health", "0"),
        "directive_tasks": "0",
        "remote_adjustment": "0",
        "year_end_bonus": amounts.get("year_end_bonus", "0"),
    }
    total = sum((Decimal(v) for v in components.values()), Decimal(0))
    advances = Decimal(amounts.get("advances", "0"))
    return {
        "code": code,
        "name": f"name of {code}",
        "equivalents": {
            "basic_medical": {"actual": bm, "non_compliant": "0"},
            "basic_public_health": {"actual": ph, "non_compliant": amounts.get("nc", "0")},
        },
        "score": amounts.get("score"),
        "coefficient": amounts.get("coefficient"),
        "components": components,
        "total": str(total),
        "advances": str(advances),
        "settlement": str(total - advances),
        "by_month": amounts.get("by_month", {}),
    }


DOC: dict[str, Any] = {
    "institutions": [
        entry(
            "C01",
            "100.5000",
            "20.2500",
            basic_medical="1256.25",
            year_end_bonus="30000.00",
            advances="900.10",
            score="83",
            coefficient="0.83",
            by_month={
                "basic_medical": {"1": "60.5000", "2": "40.0000"},
                "basic_public_health": {"3": "20.2500"},
            },
        ),
        entry("C01V01", "3.0000", "1.0000", basic_medical="37.50", nc="0.5000", score="90"),
        entry("C01V02", "2.0000", "0", basic_medical="25.00", advances="10.00"),
        entry(
            "C02",
            "50.0000",
            "10.0000",
            basic_medical="625.00",
            score="61.5",
            by_month={"basic_medical": {"12": "50.0000"}, "basic_public_health": {"12": "10"}},
        ),
    ],
    "totals": {"basic_medical": "1943.75", "basic_public_health": "0"},
    "county_steps": [{"rule": "unit_price", "outputs": {}}],
}


def rows(paid: dict[str, str] | None = None) -> list[dash.Row]:
    return dash.county_rows(DOC, INSTITUTIONS, 2024, "zh", paid=paid)


def test_a_row_per_centre_and_the_village_clinics_together() -> None:
    found = rows()
    assert [r.key for r in found] == ["C01", "C02", dash.VILLAGES]
    c01, _, villages = found
    assert c01.basic_medical == Decimal("100.5000") and c01.equivalents == Decimal("120.7500")
    assert c01.href == "/institutions/C01?year=2024" and c01.label == "C01 name of C01"
    assert c01.score == Decimal("83") and c01.settlement == Decimal("30356.15")
    assert villages.members == 2 and villages.href is None and "2 家" in villages.label
    assert villages.basic_medical == Decimal("5.0000")
    assert villages.non_compliant == Decimal("0.5000")
    assert villages.components["basic_medical"] == Decimal("62.50")
    assert villages.advances == Decimal("10.00") and villages.score is None
    total = dash.total_row(found, "zh")
    assert total.total == sum((Decimal(e["total"]) for e in DOC["institutions"]), Decimal(0))
    assert total.equivalents == Decimal("186.7500") and total.advances_paid is None


def test_advances_paid_come_from_the_runs_when_there_are_any() -> None:
    found = rows(paid={"C01": "880.00", "C01V02": "9.99"})
    assert [r.advances_paid for r in found] == [
        Decimal("880.00"),
        Decimal(0),
        Decimal("9.99"),
    ]
    assert dash.total_row(found, "zh").advances_paid == Decimal("889.99")
    chart = dash.advances_chart(found, "zh")
    assert [s["id"] for s in chart["series"]] == ["advances", "advances_paid", "settlement"]
    assert chart["series"][1]["data"] == [880.0, 0.0, 9.99]
    assert [s["id"] for s in dash.advances_chart(rows(), "en")["series"]] == [
        "advances",
        "settlement",
    ]


def test_the_equivalents_chart_stacks_the_categories_and_links_the_bars() -> None:
    chart = dash.equivalents_chart(rows(), "zh")
    labels = chart["yAxis"]["data"]
    assert labels == ["C01 name of C01", "C02 name of C02", "村卫生室（2 家合计）"]
    assert chart["dl_keys"] == ["C01", "C02", dash.VILLAGES]
    assert chart["dl_links"] == {
        "C01 name of C01": "/institutions/C01?year=2024",
        "C02 name of C02": "/institutions/C02?year=2024",
    }
    bm, ph = chart["series"]
    assert bm["id"] == "basic_medical" and bm["stack"] == ph["stack"]
    assert bm["data"] == [100.5, 50.0, 5.0] and ph["data"] == [20.25, 10.0, 1.0]


def test_the_components_chart_has_a_series_per_component_in_yuan() -> None:
    chart = dash.components_chart(rows(), "en")
    assert chart["dl_unit"] == "yuan"
    by_id = {s["id"]: s for s in chart["series"]}
    assert list(by_id) == list(dash.COMPONENTS)
    assert by_id["basic_medical"]["data"] == [1256.25, 625.0, 62.5]
    assert by_id["year_end_bonus"]["name"] == "Year-end bonus (finance share)"
    assert {s["stack"] for s in chart["series"]} == {"amount"}


def test_scores_leave_out_the_village_clinics_row_and_the_unscored() -> None:
    chart = dash.scores_chart(rows(), "zh")
    assert chart["xAxis"]["data"] == ["C01 name of C01", "C02 name of C02"]
    assert chart["series"][0]["data"] == [83.0, 61.5]


def test_the_months_add_up_to_the_year() -> None:
    months = dash.monthly_equivalents(DOC["institutions"])
    assert months["basic_medical"][0] == Decimal("60.5000")
    assert months["basic_medical"][11] == Decimal("50.0000")
    assert sum(months["basic_public_health"], Decimal(0)) == Decimal("30.2500")
    chart = dash.monthly_chart(months, 2024, "zh")
    assert chart["xAxis"]["data"][0] == "2024年1月" and len(chart["xAxis"]["data"]) == 12
    total = next(s for s in chart["series"] if s["id"] == "total")
    assert len(total["data"]) == 12 and total["data"][11] == 60.0
    assert sum(Decimal(str(v)) for v in total["data"]) == Decimal("180.7500")


@dataclass
class FakeRun:
    period: str
    state: str
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def closes_period(self) -> bool:
        return self.state in ("approved", "paid")


def test_monthly_advances_come_from_approved_runs_only() -> None:
    def run(period: str, state: str, amounts: dict[str, str]) -> FakeRun:
        lines = [{"code": c, "advances": a} for c, a in amounts.items()]
        return FakeRun(period, state, {"institutions": lines})

    runs = [
        run("2024-01", "paid", {"C01": "100.00", "C02": "50.50"}),
        run("2024-02", "approved", {"C01": "90.00"}),
        run("2024-03", "draft", {"C01": "80.00"}),
        run("2024", "paid", {"C01": "9999.00"}),
        run("2023-01", "paid", {"C01": "1.00"}),
    ]
    found = dash.monthly_run_advances(runs, 2024)  # type: ignore[arg-type]
    assert found[:3] == [Decimal("150.50"), Decimal("90.00"), None] and found[3:] == [None] * 9
    mine = dash.monthly_run_advances(runs, 2024, ["C02"])  # type: ignore[arg-type]
    assert mine[:2] == [Decimal("50.50"), Decimal(0)]
    chart = dash.monthly_advances_chart(found, 2024, "zh")
    assert chart["series"][0]["data"][:3] == [150.5, 90.0, None]


def test_a_budget_only_under_point_value_pricing() -> None:
    assert dash.budgets(DOC) == []
    doc = {
        "totals": {"basic_medical": "5000000.00", "basic_public_health": "2500000.00"},
        "county_steps": [
            {
                "rule": "point_value",
                "outputs": {
                    "basic_medical_budget": "10000000.00",
                    "basic_medical_reserve": "500000.00",
                    "basic_public_health_budget": "5000000.00",
                    "basic_public_health_reserve": "250000.00",
                },
            }
        ],
    }
    medical, health = dash.budgets(doc)
    assert medical.budget == Decimal("10000000.00") and medical.reserve == Decimal("500000.00")
    assert medical.used == Decimal("5000000.00") and medical.share == Decimal("0.5")
    assert health.category == "basic_public_health"


def test_the_fund_chart_sets_budget_beside_spending() -> None:
    doc = {
        "communities": [
            {"code": "Y1", "name": "一", "figures": {"budget": "100.005", "spending": "90.10"}},
            {"code": "Y2", "name": "二", "figures": {"budget": "50.00", "spending": "70.00"}},
        ]
    }
    chart = dash.fund_chart(doc, "zh")
    assert chart["dl_keys"] == ["Y1", "Y2"] and chart["xAxis"]["data"] == ["Y1 一", "Y2 二"]
    budget, spending = chart["series"]
    assert budget["id"] == "budget" and budget["data"] == [100.0, 50.0]
    assert spending["data"] == [90.1, 70.0]


def test_explain_links() -> None:
    assert links.explain_href("C01", 2024, "basic_medical") == (
        "/explain/institution/C01?period=2024&component=basic_medical"
    )
    assert links.explain_href("C01", 2024) == "/explain/institution/C01?period=2024"


def test_an_institution_month_by_month() -> None:
    months = views.monthly_rows(DOC["institutions"][0], 2024, [Decimal("5.00")] + [None] * 11)
    assert [m.month for m in months][:2] == ["2024-01", "2024-02"] and len(months) == 12
    assert months[0].total == Decimal("60.5000") and months[0].advances == Decimal("5.00")
    assert months[2].basic_public_health == Decimal("20.2500") and months[3].total == 0
    chart = views.monthly_chart(months, 2024, "en")
    assert chart["xAxis"]["data"][2] == "Mar 2024"
    assert [s["id"] for s in chart["series"]] == ["basic_medical", "basic_public_health"]
    assert chart["series"][0]["data"][:3] == [60.5, 40.0, 0.0]


def test_top_items_sum_the_months_and_rank_by_equivalents() -> None:
    def cell(item: str, category: str, q: str, eq: str, compliant: bool = True) -> dict[str, Any]:
        return {
            "item": item,
            "category": category,
            "month": "2024-01",
            "compliant": compliant,
            "quantity": q,
            "equivalents": eq,
            "records": 1,
        }

    cells = [
        cell("BM1", "basic_medical", "2", "3.0000"),
        cell("BM1", "basic_medical", "1", "1.5000"),
        cell("PH1", "basic_public_health", "4", "8.0000"),
        cell("PH1", "basic_public_health", "1", "2.0000", compliant=False),
        cell("BM2", "basic_medical", "1", "4.5000"),
    ]
    found = views.top_items(cells, {"BM1": "门诊"}, limit=2)
    assert [i.code for i in found] == ["PH1", "BM1"]  # BM1 ties BM2 at 4.5: by code
    assert found[0].quantity == Decimal(5) and found[0].equivalents == Decimal("8.0000")
    assert found[0].non_compliant == Decimal("2.0000") and found[0].records == 2
    assert found[1].name == "门诊" and found[1].quantity == Decimal(3)


def test_the_shares_chart_puts_the_largest_first() -> None:
    staff = [
        {"staff_id": "S2", "name": "乙", "performance_pay": "100.00"},
        {"staff_id": "S1", "name": "甲", "performance_pay": "300.50"},
        {"staff_id": "S3", "name": "丙", "performance_pay": "100.00"},
    ]
    chart = views.shares_chart(staff, "zh")
    assert chart["dl_keys"] == ["S1", "S2", "S3"]
    assert chart["yAxis"]["data"] == ["甲 S1", "乙 S2", "丙 S3"]
    assert chart["series"][0]["data"] == [300.5, 100.0, 100.0] and chart["dl_unit"] == "yuan"
    assert [s["staff_id"] for s in views.staff_rows(staff)] == ["S1", "S2", "S3"]
