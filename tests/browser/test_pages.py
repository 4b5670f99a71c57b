"""The main pages in a real browser: the charts draw the application's numbers (read from
the chart, not from pixels), a yuan walks down to the service records behind it, a what-if
shows its difference per institution; accessibility basics; screenshots for the docs."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from dangliang.domain.periods import Period
from dangliang.policy.reform import Change, Scenario
from tests.browser.conftest import LiveServer, accessibility_violations, chart_option


def _keys(page: Any, chart_id: str) -> list[str]:
    """The institution (or other) code of each bar, as the server wrote it beside the chart."""
    source = page.locator(f'script[data-chart-for="{chart_id}"]').text_content()
    keys: list[str] = json.loads(source)["dl_keys"]
    return keys


def test_the_overview_charts_draw_the_county_s_numbers(
    as_user: Any, live: LiveServer, screenshot: Any
) -> None:
    page = as_user("auditor")
    page.goto(live.url + "/?year=2024")
    option = chart_option(page, "ov-equivalents")
    keys = _keys(page, "ov-equivalents")
    drawn = {s["id"]: dict(zip(keys, s["data"], strict=True)) for s in option["series"]}
    county = live.service.equivalents("2024")  # type: ignore[attr-defined]
    for inst in county["institutions"]:
        if inst["code"] in keys:  # a centre (the village clinics are summed in one bar)
            for category in ("basic_medical", "basic_public_health"):
                assert drawn[category][inst["code"]] == float(Decimal(inst[category]))

    components = chart_option(page, "ov-components")
    computed = live.service.compute(Period.of("2024")).as_json()  # type: ignore[attr-defined]
    by_code = {i["code"]: i for i in computed["institutions"]}
    keys = _keys(page, "ov-components")
    for series in components["series"]:
        for code, value in zip(keys, series["data"], strict=True):
            if code in by_code:
                expected = Decimal(by_code[code]["components"][series["id"]])
                assert Decimal(str(value)) == expected.quantize(Decimal("0.01"))

    monthly = chart_option(page, "ov-monthly")
    assert len(monthly["xAxis"][0]["data"]) == 12
    assert accessibility_violations(page) == []
    screenshot(page, "overview")


def test_a_yuan_walks_down_to_the_records_and_back(
    as_user: Any, live: LiveServer, screenshot: Any
) -> None:
    page = as_user("auditor")
    page.goto(live.url + "/institutions/C01?year=2024")
    # drawn by the page's load event, which `goto` waits for (ECharts is fetched on demand)
    drawn = "echarts.getInstanceByDom(document.getElementById('inst-monthly')) !== undefined"
    assert page.evaluate(drawn)
    screenshot(page, "institution")
    page.locator('#table-components a[href*="component=basic_medical"]').first.click()
    page.wait_for_url("**/explain/institution/C01?*component=basic_medical*")
    title = page.locator("#explain-title")
    assert title.get_attribute("data-component") == "basic_medical"
    assert accessibility_violations(page) == []
    screenshot(page, "explain")

    first_item = page.locator("#items-table tbody tr[data-item]").first
    item = first_item.get_attribute("data-item")
    item_equivalents = Decimal(first_item.get_attribute("data-equivalents"))
    page.locator(f"#records-link-{item}").click()
    page.wait_for_url(f"**/explain/institution/C01/records?*item={item}*")
    total = Decimal(page.locator("#records-equivalents").get_attribute("data-value"))
    assert total == item_equivalents
    rows = page.locator("#records-table tr.record")
    assert rows.count() > 0
    source_id = rows.first.get_attribute("data-source-id")
    behind = live.service.records("C01", "2024", item=item)["records"]  # type: ignore[attr-defined]
    assert source_id in {r["source_id"] for r in behind}
    screenshot(page, "records")

    page.locator("#back-to-item").click()
    page.wait_for_url("**/explain/institution/C01?*")
    assert page.locator("#explain-title").get_attribute("data-institution") == "C01"


def test_a_what_if_shows_its_difference_per_institution(
    as_user: Any, live: LiveServer, screenshot: Any
) -> None:
    page = as_user("auditor")
    page.goto(live.url + "/policy/what-if")
    path = "unit_price.basic_medical"
    page.locator("#whatif-period").fill("2024")
    page.locator("#whatif-path-0").select_option(path)
    page.locator("#whatif-value-0").fill("13.50")
    page.locator("#whatif-form button[type=submit]").click()
    option = chart_option(page, "whatif-diff-chart")
    codes = option["xAxis"][0]["data"]
    drawn = dict(zip(codes, option["series"][0]["data"], strict=True))

    service = live.service  # type: ignore[attr-defined]
    change = Change(path, Decimal("13.50"), Period.of("2024").first_day)
    expected = service.what_if(Period.of("2024"), Scenario(f"{path}=13.50", (change,)))
    assert set(drawn) == {row["code"] for row in expected["institutions"]}
    assert any(Decimal(row["difference"]) != 0 for row in expected["institutions"])
    for row in expected["institutions"]:
        if row["code"] in drawn:
            assert Decimal(str(drawn[row["code"]])) == Decimal(row["difference"])
    head = page.locator("#whatif-nothing-written")
    assert head.get_attribute("data-log-head-before") == head.get_attribute("data-log-head-after")
    assert accessibility_violations(page) == []
    screenshot(page, "what-if")
