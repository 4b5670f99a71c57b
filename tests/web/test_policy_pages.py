"""The policy pages: parameters in force on a day with their clauses, the history of
adoptions and changes, and the what-if (nothing written)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient

from dangliang.application import Dangliang
from dangliang.domain.periods import Period
from dangliang.policy.reform import Change, Scenario
from dangliang.web import create_site
from tests.conftest import sqlite_only
from tests.web.conftest import PASSWORD, Site, csrf_of, sign_in


def rows_of(text: str, marker: str) -> list[dict[str, str]]:
    """The attributes of every start tag carrying `marker`."""
    return [
        {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
        for tag in re.findall(r"<[a-z]+\s[^>]*>", text)
        if marker in tag
    ]


def param(text: str, path: str) -> dict[str, str]:
    found = [r for r in rows_of(text, 'class="param"') if r["data-path"] == path]
    assert len(found) == 1, path
    return found[0]


def chart_option(text: str, chart_id: str) -> dict:  # type: ignore[type-arg]
    found = re.search(
        r'<script type="application/json" data-chart-for="' + chart_id + r'">(.*?)</script>',
        text,
        re.S,
    )
    assert found, chart_id
    return json.loads(found.group(1).replace("<\\/", "</"))  # type: ignore[no-any-return]


def test_the_parameters_in_force_with_their_clauses(site: Site) -> None:
    page = site.get("clerk", "/policy", date="2024-06-01")
    assert page.status_code == 200
    expected = site.service.parameters_in_force(
        on=date(2024, 6, 1), position=site.service.catch_up()
    )
    shown = {r["data-path"]: r for r in rows_of(page.text, 'class="param"')}
    assert set(shown) == {r["path"] for r in expected["parameters"]}
    for r in expected["parameters"]:
        assert shown[r["path"]]["data-value"] == r["value"]
        assert shown[r["path"]]["data-effective-from"] == r["effective_from"]
        assert html.escape(r["reference"], quote=False) in page.text
    assert param(page.text, "unit_price.basic_medical")["data-value"] == "12.5"
    assert 'id="group-unit_price"' in page.text  # grouped as the bundle groups them
    assert "标准当量单价" in page.text  # the bundle's own description of the group


def test_a_dated_value_before_and_after_it_takes_effect(site: Site) -> None:
    """The insurance bundle dates its growth rate per year: 0.049 for 2023, 0.05 for 2024."""
    before = site.get("auditor", "/policy", date="2023-12-31", scheme="insurance")
    after = site.get("auditor", "/policy", date="2024-01-01", scheme="insurance")
    assert param(before.text, "deqing.growth_rate")["data-value"] == "0.049"
    assert param(after.text, "deqing.growth_rate")["data-value"] == "0.05"
    assert param(after.text, "deqing.growth_rate")["data-effective-from"] == "2024-01-01"
    assert "德清县医保领导小组会议纪要〔2022〕1号" in after.text
    assert site.get("admin", "/policy", date="not-a-day").status_code == 422


def _policy_only(app: Dangliang) -> None:
    app.adopt_policy("zhuji", reference="县卫健局〔2024〕1号", actor="tester")
    app.users.add("局管理员", role="admin", institution=None, actor="tester")
    app.users.set_password("局管理员", PASSWORD, actor="tester", must_change=False)


@sqlite_only  # the pages; a change recorded on PostgreSQL: tests/integration/test_compensation.py
def test_a_recorded_change_shows_on_its_day_and_in_the_history(
    prepared_app: Callable[..., Dangliang],
) -> None:
    app = prepared_app("web-policy-change", _policy_only)
    app.change_parameter(
        "unit_price.basic_medical",
        "13.00",
        start=date(2024, 7, 1),
        reason="价格调整 / price review",
        approver="县卫健局、财政局",
        actor="局管理员",
    )
    client = TestClient(create_site(app), follow_redirects=False)
    sign_in(client, "局管理员", PASSWORD)
    june = client.get("/policy", params={"date": "2024-06-30"}, headers={"Accept": "text/html"})
    july = client.get("/policy", params={"date": "2024-07-01"}, headers={"Accept": "text/html"})
    assert param(june.text, "unit_price.basic_medical")["data-value"] == "12.5"
    shown = param(july.text, "unit_price.basic_medical")
    assert (shown["data-value"], shown["data-effective-from"]) == ("13", "2024-07-01")
    assert "价格调整 / price review（批准：县卫健局、财政局）" in july.text

    history = client.get("/policy/history", headers={"Accept": "text/html"})
    assert history.status_code == 200
    entries = rows_of(history.text, "data-kind=")
    change, adoption = entries  # newest first
    assert change["data-kind"] == "change" and adoption["data-kind"] == "adoption"
    assert change["data-path"] == "unit_price.basic_medical"
    assert (change["data-old"], change["data-new"]) == ("12.5", "13")
    assert change["data-effective-from"] == "2024-07-01"
    policy = app.policy()
    assert int(adoption["data-position"]) == policy.adopted_at
    assert int(change["data-position"]) == policy.changes[0]["notification_id"]
    assert "县卫健局〔2024〕1号" in history.text and "县卫健局、财政局" in history.text


def test_the_history_of_the_shared_county(site: Site) -> None:
    page = site.get("clerk", "/policy/history")
    assert page.status_code == 200
    adoptions = [r for r in rows_of(page.text, "data-kind=") if r["data-kind"] == "adoption"]
    assert int(adoptions[-1]["data-position"]) <= site.service.policy().adopted_at
    fund = site.get("clerk", "/policy/history", scheme="insurance")
    assert "deqing_insurance.yaml" in fund.text


CHANGE: dict[str, object] = {
    "period": "2024",
    "path": ["unit_price.basic_medical", "", ""],
    "value": ["13.00", "", ""],
    "effective_from": ["2024-07-01", "", ""],
}


def test_what_if_per_institution_equals_the_application_and_writes_nothing(site: Site) -> None:
    app = site.service
    head = app.catch_up()
    page = site.post("auditor", "/policy/what-if", CHANGE)
    assert page.status_code == 200
    scenario = Scenario(
        "x", (Change("unit_price.basic_medical", Decimal("13.00"), date(2024, 7, 1)),)
    )
    expected = app.what_if(Period.of("2024"), scenario)
    option = chart_option(page.text, "whatif-diff-chart")
    assert option["xAxis"]["data"] == [r["code"] for r in expected["institutions"]]
    assert option["series"][0]["data"] == [
        round(float(Decimal(r["difference"])), 2) for r in expected["institutions"]
    ]
    rows = {r["data-code"]: r for r in rows_of(page.text, "data-code=")}
    for r in expected["institutions"]:
        shown = rows[r["code"]]
        assert (shown["data-baseline"], shown["data-scenario"], shown["data-difference"]) == (
            r["baseline"],
            r["scenario"],
            r["difference"],
        )
    total = rows_of(page.text, 'id="whatif-total"')[0]
    assert total["data-difference"] == expected["totals"]["difference"]
    assert Decimal(total["data-difference"]) > 0
    written = rows_of(page.text, 'id="whatif-nothing-written"')[0]
    assert written["data-log-head-before"] == written["data-log-head-after"] == str(head)
    assert app.log.head() == head and "未写入任何数据" in page.text


def test_what_if_of_the_fund_per_community(sqlite_site: Site) -> None:
    form: dict[str, object] = {
        "period": "2024",
        "scheme": "insurance",
        "path": ["deqing.growth_rate"],
    }
    page = sqlite_site.post("admin", "/policy/what-if", {**form, "value": ["0.08"]})
    assert page.status_code == 200
    expected = sqlite_site.service.insurance_what_if(Period.of("2024"), ["deqing.growth_rate=0.08"])
    option = chart_option(page.text, "whatif-diff-chart")
    assert option["series"][0]["data"] == [
        round(float(Decimal(c["figures"]["final"]["difference"])), 2)
        for c in expected["communities"]
    ]


def test_what_if_problems_are_listed_and_nothing_is_computed(sqlite_site: Site) -> None:
    bad: dict[str, object] = {
        "period": "2024-13",
        "path": ["unit_price.basic_medical", "advance.ratio", ""],
        "value": ["thirteen", "0.9", "1"],
        "effective_from": ["", "2024-07-15", ""],
    }
    page = sqlite_site.post("admin", "/policy/what-if", bad)
    assert page.status_code == 422
    problems = re.findall(r'<tr class="problem">', page.text)
    assert len(problems) == 3  # the period, the value's kind and the row without a parameter
    assert "期间无效" in page.text and "thirteen" in page.text
    assert 'id="whatif-result"' not in page.text
    mid_month = sqlite_site.post(
        "admin",
        "/policy/what-if",
        {**CHANGE, "effective_from": ["2024-07-15", "", ""]},
    )
    assert mid_month.status_code == 422 and 'class="problem"' in mid_month.text


def test_what_if_needs_the_role_and_the_forms_token(site: Site) -> None:
    assert site.get("clerk", "/policy/what-if").status_code == 403
    assert site.post("clerk", "/policy/what-if", CHANGE).status_code == 403
    client = site.client("auditor")
    assert client.post("/policy/what-if", data=CHANGE).status_code == 403
    assert (
        client.post("/policy/what-if", data={**CHANGE, "csrf_token": "forged"}).status_code == 403
    )
    form = site.get("auditor", "/policy/what-if")
    assert form.status_code == 200
    for name in ("period", "path", "value", "effective_from", "csrf_token"):
        assert f'name="{name}"' in form.text
    options = re.findall(r'<option value="([^"]+)" data-unit', form.text)
    assert "unit_price.basic_medical" in options
    assert csrf_of(client) in form.text
