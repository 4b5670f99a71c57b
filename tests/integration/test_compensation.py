"""Institution compensation on a generated county, through the log and the read models, on
SQLite and PostgreSQL: compute (month and year), explain, what-if, policy adoption and changes,
and reproducing a past computation from the log position it used."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from dangliang.application import Dangliang
from dangliang.domain import ids
from dangliang.domain.errors import DomainError
from dangliang.domain.inputs import ForceMajeure, InstitutionYear
from dangliang.domain.periods import Period
from dangliang.domain.service import ServiceRecord
from dangliang.policy import PolicyError
from dangliang.policy.parameter_values import ParameterLookupError
from dangliang.policy.reform import Change, Scenario, scenario_from_sets
from dangliang.policy.subsidy_records import COMPONENTS
from dangliang.projections.facts_queries import NoPolicyAdopted
from tests.conftest import Preparation, PrepareApp, county_tag, load_reference, records
from tests.integration.test_equivalents import allow_frozen_time

YEAR = 2024
D = Decimal


def prepared(app: Dangliang, county: Any, bundle: str = "zhuji") -> None:
    load_reference(app, county)
    app.import_services(county.files["services"], actor="t", today=date(2025, 1, 1))
    adopt(app, bundle)


def adopt(app: Dangliang, bundle: str = "zhuji") -> None:
    app.adopt_policy(bundle, reference="县府办〔2024〕1号（测试）", actor="t")


def compensation(county: Any, bundle: str = "zhuji") -> Preparation:
    """What `prepared` writes, as a prepared database: the bundle adopted on a copy of the
    county's records (tests/conftest.py's `records`)."""
    name = f"compensation-{bundle}{county_tag(county)}"
    return Preparation(name, lambda a: adopt(a, bundle), records(county))


def record_inputs(app: Dangliang) -> None:
    """Scores, a pay level, tasks, income and a force-majeure declaration, as events."""
    c01 = InstitutionYear.open(institution_code="C01", year=YEAR, actor="t")
    c01.score_assessment(score=D("90"), reference="2024 年度考核", actor="t")
    c01.assign_task(
        task_code="T1", name="疫情防控", amount=D("50000"), reference="卫健〔2024〕3号", actor="t"
    )
    c01.complete_task(task_code="T1", completion=D("0.8"), actor="t")
    for m in range(1, 13):
        c01.report_income(month=date(YEAR, m, 1), amount=D("100.00"), actor="t")
    c07 = InstitutionYear.open(institution_code="C07", year=YEAR, actor="t")  # remote
    c07.score_assessment(score=D("85"), reference="2024 年度考核", actor="t")
    c07.report_pay_level(per_head=D("140000"), actor="t")
    c12 = InstitutionYear.open(institution_code="C12", year=YEAR, actor="t")  # remote, failed
    c12.score_assessment(score=D("55"), reference="2024 年度考核", actor="t")
    c12.report_pay_level(per_head=D("100000"), actor="t")
    fm = ForceMajeure.declare(
        code="FM2024-1",
        first_month=date(YEAR, 2, 1),
        last_month=date(YEAR, 3, 1),
        institutions=["C02"],
        reason="疫情",
        reference="县政府〔2024〕9号",
        actor="t",
    )
    app.log.save(c01, c07, c12, fm)


def record_previous_year(app: Dangliang) -> None:
    """Last year's February for C02 (force majeure) and a small year for C03 (growth cap)."""
    item = app.log.repository.get(ids.catalogue_item_id("BM001"))
    item.set_value(value=D("1"), effective_from=date(YEAR - 1, 1, 1), reference="t", actor="t")
    records = [
        ServiceRecord.record(
            institution_code=inst,
            source_id=f"PREV-{inst}-{n}",
            staff_id="S-PREV",
            item_code="BM001",
            quantity=D(quantity),
            service_date=date(YEAR - 1, month, 10),
            actor="t",
        )
        for n, (inst, month, quantity) in enumerate(
            [("C02", 2, "5000"), ("C03", 6, "100"), ("C03", 7, "100")]
        )
    ]
    app.log.save(item, *records)


def by_code(computed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in computed["institutions"]}


@pytest.mark.parametrize("bundle", ["zhuji", "point_value"])
def test_annual_settlement_adds_up_and_matches_the_months(
    prepared_app: PrepareApp, county: Any, bundle: str
) -> None:
    app = prepared_app(compensation(county, bundle))
    record_inputs(app)
    year = app.compute(Period(YEAR)).as_json()
    months = [by_code(app.compute(Period(YEAR, m)).as_json()) for m in range(1, 13)]
    equivalents = {r["code"]: r for r in app.equivalents(str(YEAR))["institutions"]}
    assert len(year["institutions"]) == 139
    for r in year["institutions"]:
        components = {k: D(v) for k, v in r["components"].items()}
        assert D(r["total"]) == sum(components.values())
        assert D(r["settlement"]) == D(r["total"]) - D(r["advances"])
        assert D(r["advances"]) == sum(D(m[r["code"]]["advances"]) for m in months)
        if r["code"] in equivalents:
            eq = equivalents[r["code"]]
            assert D(r["equivalents"]["basic_medical"]["actual"]) == D(eq["basic_medical"])
            assert D(r["equivalents"]["basic_public_health"]["actual"]) == D(
                eq["basic_public_health"]
            )
    for month in months:
        for m in month.values():
            basis = D(m["components"]["basic_medical"]) + D(m["components"]["basic_public_health"])
            assert D(m["total"]) == basis
            expected = (basis * D(m["advance_ratio"])).quantize(D("0.01"), ROUND_HALF_UP)
            assert D(m["advances"]) == expected
    total = sum(D(r["total"]) for r in year["institutions"])
    assert D(year["totals"]["total"]) == total
    assert year["policy"]["bundle"] == f"{bundle}.yaml"


def test_point_value_is_the_budget_over_county_equivalents(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county, "point_value"))
    computed = app.compute(Period(YEAR)).as_json()
    step = next(s for s in computed["county_steps"] if s["rule"] == "point_value")
    out = step["outputs"]
    bought = sum(D(r["equivalents"]["basic_medical"]["bought"]) for r in computed["institutions"])
    assert D(out["basic_medical_county_equivalents"]) == bought
    expected = (D("63000000.00") * D("0.95") / bought).quantize(D("0.000001"), ROUND_HALF_UP)
    assert D(out["basic_medical_point_value"]) == expected
    assert D(out["basic_medical_reserve"]) == D("3150000.00")
    # 2024's budget (63,000,000) is the one in force on 1 January, with its reference
    budget = next(p for p in step["parameters"] if p["path"] == "budget.basic_medical")
    assert budget["effective_from"] == "2024-01-01" and "illustrative" in budget["reference"]


def test_inputs_recorded_as_events_reach_the_rule_steps(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    record_inputs(app)
    record_previous_year(app)
    rows = by_code(app.compute(Period(YEAR)).as_json())
    c01 = rows["C01"]
    assert c01["coefficient"] == "0.9" and c01["score"] == "90"
    assert c01["components"]["directive_tasks"] == "40000.00"  # 50,000 × 0.8
    # remote C07 passed: per head = clamp(150,000 − 140,000, 15,000, 45,000) = 15,000
    c07 = rows["C07"]
    headcount = c07_headcount(county)
    assert D(c07["components"]["remote_adjustment"]) == D("15000.00") * headcount
    assert D(c07["components"]["year_end_bonus"]) == D("10000") * headcount
    assert rows["C12"]["components"]["remote_adjustment"] == "0"  # failed assessment
    # force majeure: C02's February is topped up to last year's 5,000
    c02 = rows["C02"]["equivalents"]["basic_medical"]
    feb = D(app.equivalents(f"{YEAR}-02", institution="C02")["institutions"][0]["basic_medical"])
    assert D(c02["top_up"]) == D("5000") - feb
    # growth cap: C03 had 200 last year, so at most 220 is bought
    c03 = rows["C03"]["equivalents"]["basic_medical"]
    assert D(c03["cap_limit"]) == D("220.0000")
    assert D(c03["bought"]) == D("220.0000") + D(c03["top_up"])
    assert D(c03["excess"]) == D(c03["actual"]) - D("220.0000")


def c07_headcount(county: Any) -> int:
    with county.files["headcount"].open(encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(",")
            if parts[0] == "C07" and parts[1] == str(YEAR):
                return int(parts[2])
    raise AssertionError("no headcount for C07")


@pytest.mark.parametrize("bundle", ["zhuji", "point_value"])
def test_explain_comes_from_the_same_computation(
    prepared_app: PrepareApp, county: Any, bundle: str
) -> None:
    app = prepared_app(compensation(county, bundle))
    record_inputs(app)
    computed = by_code(app.compute(Period(YEAR)).as_json())["C01"]
    for component in COMPONENTS:
        found = app.explain("C01", Period(YEAR), component=component)
        assert found["amount"] == computed["components"][component]
        for step in found["steps"]:
            for param in step["parameters"]:
                assert param["reference"] and param["effective_from"]
    medical = app.explain("C01", Period(YEAR), component="basic_medical")
    rules = [s["rule"] for s in medical["steps"]]
    pricing = "unit_price" if bundle == "zhuji" else "point_value"
    assert {pricing, "equivalents", "growth_cap", "coefficient", "basic_medical"} <= set(rules)
    items = medical["equivalents_by_item"]
    assert sum(D(i["equivalents"]) for i in items) == D(
        computed["equivalents"]["basic_medical"]["actual"]
    )
    listed = app.records("C01", str(YEAR), position=medical["position"])["records"]
    assert (
        len([r for r in listed if r["item"].startswith("BM")])
        == medical["records"]["basic_medical"]
    )
    assert medical["records_command"].startswith("dangliang records --institution C01")
    whole = app.explain("C01", Period(YEAR))
    assert whole["amount"] == computed["total"]
    with pytest.raises(DomainError):
        app.explain("NOPE", Period(YEAR))


def test_what_if_equals_the_difference_of_two_computations(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    record_inputs(app)
    head = app.log.head()
    scenario = Scenario(
        "基本医疗单价 13 元 / price 13",
        (Change("unit_price.basic_medical", D("13.00"), date(YEAR, 1, 1)),),
    )
    diff = app.what_if(Period(YEAR), scenario)
    assert app.log.head() == head  # nothing written
    baseline = by_code(app.compute(Period(YEAR)).as_json())
    reform = by_code(app.compute(Period(YEAR), tree=scenario.apply(app.policy().tree)).as_json())
    for row in diff["institutions"]:
        code = row["code"]
        assert D(row["difference"]) == D(reform[code]["total"]) - D(baseline[code]["total"])
    assert D(diff["totals"]["difference"]) > 0
    # Recording the same change for real gives the scenario's numbers.
    app.change_parameter(
        "unit_price.basic_medical",
        "13.00",
        start=date(YEAR, 1, 1),
        reason="价格调整",
        approver="财政局",
        actor="t",
    )
    after = by_code(app.compute(Period(YEAR)).as_json())
    for row in diff["institutions"]:
        assert after[row["code"]]["total"] == row["scenario"]
    # --set gives the same scenario
    sets = scenario_from_sets(
        ["unit_price.basic_medical=13.00"], app.policy().tree, date(YEAR, 1, 1)
    )
    assert sets.changes == scenario.changes


def test_a_past_computation_is_reproduced_after_later_events(app: Dangliang, county: Any) -> None:
    allow_frozen_time(app)
    with freeze_time("2025-01-10 09:00:00"):
        prepared(app, county)
        record_inputs(app)
        first = app.compute(Period(YEAR)).as_json()
        march = app.compute(Period(YEAR, 3)).as_json()
    with freeze_time("2025-02-01 10:00:00"):
        app.change_parameter(
            "unit_price.basic_medical",
            "14.00",
            start=date(YEAR, 3, 1),
            reason="重大项目",
            approver="卫健局、财政局",
            actor="t",
        )
        c01 = app.log.repository.get(ids.institution_year_id("C01", YEAR))
        c01.score_assessment(score=D("70"), reference="复核", actor="t")
        app.log.save(c01)
        record_previous_year(app)
        changed = app.compute(Period(YEAR)).as_json()
    assert changed["totals"] != first["totals"]
    again = app.compute(Period(YEAR), position=first["position"]).as_json()
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    as_of = app.compute(Period(YEAR, 3), as_of=datetime(2025, 1, 20, tzinfo=UTC)).as_json()
    assert as_of == march


def test_policy_adoption_is_recorded_once_and_bad_bundles_are_refused(
    reference_app: Dangliang, county: Any, tmp_path: Path
) -> None:
    app = reference_app
    with pytest.raises(NoPolicyAdopted):
        app.compute(Period(YEAR))
    changed, tree = app.adopt_policy("zhuji", reference="adopted", actor="t")
    assert changed
    assert app.adopt_policy("zhuji", reference="adopted", actor="t")[0] is False
    assert app.policy().digest == tree.digest()
    bad = tmp_path / "county.yaml"
    text = (
        tree_text("zhuji")
        .replace('value: "12.50"', "value: 12.50")
        .replace(
            '      2022-01-01:\n        value: "0.85"', '      2022-01-15:\n        value: "0.85"'
        )
    )
    bad.write_text(text, encoding="utf-8")
    head = app.log.head()
    with pytest.raises(PolicyError) as refused:
        app.adopt_policy(str(bad), reference="x", actor="t")
    report = refused.value.report()
    assert "county.yaml:" in report and "unit_price.basic_medical.values.2022-01-01.value" in report
    assert "advance.ratio.values.2022-01-15" in report
    assert app.log.head() == head


def tree_text(name: str) -> str:
    from importlib import resources

    return (resources.files("dangliang.policy") / "bundles" / f"{name}.yaml").read_text("utf-8")


def test_parameter_changes_need_a_reason_an_approver_and_a_first_of_month(
    reference_app: Dangliang, county: Any
) -> None:
    app = reference_app
    app.adopt_policy("zhuji", reference="adopted", actor="t")
    head = app.log.head()
    with pytest.raises(DomainError, match="reason"):
        app.change_parameter(
            "unit_price.basic_medical",
            "13",
            start=date(2025, 1, 1),
            reason=" ",
            approver="x",
            actor="t",
        )
    with pytest.raises(DomainError, match="approver"):
        app.change_parameter(
            "unit_price.basic_medical",
            "13",
            start=date(2025, 1, 1),
            reason="x",
            approver="",
            actor="t",
        )
    with pytest.raises(ParameterLookupError, match="1st of a month"):
        app.change_parameter(
            "unit_price.basic_medical",
            "13",
            start=date(2025, 1, 15),
            reason="x",
            approver="y",
            actor="t",
        )
    with pytest.raises(ParameterLookupError, match="did you mean"):
        app.change_parameter(
            "price.basic_medical", "13", start=date(2025, 1, 1), reason="x", approver="y", actor="t"
        )
    with pytest.raises(ParameterLookupError):
        app.change_parameter(
            "unit_price.basic_medical",
            "12.5.0",
            start=date(2025, 1, 1),
            reason="x",
            approver="y",
            actor="t",
        )
    assert app.log.head() == head
    assert app.change_parameter(
        "advance.ratio", "0.90", start=date(2025, 1, 1), reason="x", approver="y", actor="t"
    )
    assert not app.change_parameter(
        "advance.ratio", "0.9", start=date(2025, 1, 1), reason="x", approver="y", actor="t"
    )
    assert app.policy().tree.get("advance.ratio", date(2025, 2, 1)).value == D("0.9")
    assert app.policy().tree.get("advance.ratio", date(2024, 12, 1)).value == D("0.85")


def test_rebuilt_inputs_give_the_same_computation(prepared_app: PrepareApp, county: Any) -> None:
    app = prepared_app(compensation(county))
    record_inputs(app)
    before = app.compute(Period(YEAR)).as_json()
    app.rebuild()
    assert app.compute(Period(YEAR)).as_json() == before
