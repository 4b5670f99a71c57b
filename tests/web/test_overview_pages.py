"""The county overview (GET /): its figures, charts and tables are the application's."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import Decimal
from typing import Any

from dangliang.domain.periods import Period
from dangliang.policy.subsidy_records import COMPONENTS
from tests.web.conftest import Site

YEAR = 2024
ZERO = Decimal(0)


def chart_of(html: str, chart_id: str) -> dict[str, Any]:
    """The ECharts option the page wrote for `chart_id`."""
    found = re.search(
        rf'<script type="application/json" data-chart-for="{chart_id}">(.*?)</script>',
        html,
        re.S,
    )
    assert found, f"no chart {chart_id}"
    option: dict[str, Any] = json.loads(found.group(1))
    return option


def series_of(option: dict[str, Any], series_id: str) -> dict[str, Decimal]:
    """A series by its id, keyed by the chart's row keys (`dl_keys`)."""
    found = next(s for s in option["series"] if s["id"] == series_id)
    return {k: Decimal(str(v)) for k, v in zip(option["dl_keys"], found["data"], strict=True)}


def figure(html: str, figure_id: str) -> Decimal:
    found = re.search(rf'id="{figure_id}" data-value="([^"]*)"', html)
    assert found, f"no figure {figure_id}"
    return Decimal(found.group(1))


def by_centre(site: Site, values: dict[str, Decimal]) -> dict[str, Decimal]:
    """Per institution → per centre on its own, the village clinics together."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for code, (_, parent) in site.service.institutions().items():
        out["villages" if parent else code] += values.get(code, ZERO)
    return dict(out)


def overview(site: Site, who: str = "admin") -> str:
    page = site.get(who, "/", year=YEAR)
    assert page.status_code == 200, page.text[:500]
    return page.text


def test_the_equivalents_per_centre_are_the_applications(site: Site) -> None:
    html = overview(site)
    found = site.service.equivalents(str(YEAR))["institutions"]
    option = chart_of(html, "ov-equivalents")
    for category in ("basic_medical", "basic_public_health"):
        expected = by_centre(site, {r["code"]: Decimal(r[category]) for r in found})
        assert series_of(option, category) == expected
        for key, value in expected.items():  # the table carries the exact figures
            cell = re.search(
                rf'<tr data-key="{key}">.*?data-col="{category}" data-value="([^"]+)"', html, re.S
            )
            assert cell and Decimal(cell.group(1)) == value
    assert set(option["dl_links"].values()) == {
        f"/institutions/{code}?year={YEAR}"
        for code, (_, parent) in site.service.institutions().items()
        if parent is None
    }
    county = sum(Decimal(r["basic_medical"]) + Decimal(r["basic_public_health"]) for r in found)
    assert figure(html, "fig-equivalents") == county


def test_the_components_stacked_are_the_computation(site: Site) -> None:
    html = overview(site)
    doc = site.service.compute(Period(YEAR)).as_json()
    option = chart_of(html, "ov-components")
    assert option["dl_unit"] == "yuan"
    for c in COMPONENTS:
        amounts = {r["code"]: Decimal(r["components"][c]) for r in doc["institutions"]}
        expected = {k: v.quantize(Decimal("0.01")) for k, v in by_centre(site, amounts).items()}
        assert series_of(option, c) == expected
    assert figure(html, "fig-total") == Decimal(doc["totals"]["total"])
    assert figure(html, "fig-advances") == Decimal(doc["totals"]["advances"])
    assert figure(html, "fig-settlement") == Decimal(doc["totals"]["settlement"])
    advances = series_of(chart_of(html, "ov-advances"), "settlement")
    settlement = {r["code"]: Decimal(r["settlement"]) for r in doc["institutions"]}
    assert advances == by_centre(site, settlement)


def test_every_amount_opens_its_explanation(site: Site) -> None:
    html = overview(site)
    row = re.search(r'<table class="grid" id="table-amounts">.*?</table>', html, re.S)
    assert row
    for c in COMPONENTS:
        assert f'href="/explain/institution/C01?period={YEAR}&amp;component={c}"' in row.group(0)
    assert f'href="/explain/institution/C01?period={YEAR}"' in row.group(0)
    doc = site.service.compute(Period(YEAR)).as_json()
    c01 = next(r for r in doc["institutions"] if r["code"] == "C01")
    link = re.search(
        r'<tr data-key="C01">.*?data-col="basic_medical"><a class="yuan" href="[^"]+" '
        r'data-value="([^"]+)"',
        row.group(0),
        re.S,
    )
    assert link and Decimal(link.group(1)) == Decimal(c01["components"]["basic_medical"])


def test_the_month_line_has_twelve_points_that_add_up_to_the_year(site: Site) -> None:
    html = overview(site)
    option = chart_of(html, "ov-monthly")
    assert len(option["xAxis"]["data"]) == 12 and option["xAxis"]["data"][0] == f"{YEAR}年1月"
    by_id = {s["id"]: [Decimal(str(v)) for v in s["data"]] for s in option["series"]}
    assert all(len(points) == 12 for points in by_id.values())
    found = site.service.equivalents(str(YEAR))["institutions"]
    for category in ("basic_medical", "basic_public_health"):
        assert sum(by_id[category]) == sum(Decimal(r[category]) for r in found)
    assert sum(by_id["total"]) == figure(html, "fig-equivalents")
    for month in (1, 7, 12):  # and each month is the application's month
        label = f"{YEAR}-{month:02d}"
        one = site.service.equivalents(label)["institutions"]
        expected = sum(Decimal(r["basic_medical"]) + Decimal(r["basic_public_health"]) for r in one)
        assert by_id["total"][month - 1] == expected
        pattern = rf'<tr data-month="{label}">.*?data-col="total" data-value="([^"]+)"'
        cell = re.search(pattern, html, re.S)
        assert cell and Decimal(cell.group(1)) == expected


def test_the_fund_shows_budget_and_spending_per_community(site: Site) -> None:
    html = overview(site)
    fund = site.service.compute_insurance(Period(YEAR)).as_json()
    option = chart_of(html, "ov-fund")
    assert option["dl_keys"] == [c["code"] for c in fund["communities"]]
    for key in ("budget", "spending"):
        expected = {c["code"]: Decimal(c["figures"][key]) for c in fund["communities"]}
        assert series_of(option, key) == expected
    assert 'id="table-fund"' in html


def test_scores_and_the_budget(site: Site) -> None:
    html = overview(site)
    doc = site.service.compute(Period(YEAR)).as_json()
    option = chart_of(html, "ov-scores")
    scores = {r["code"]: Decimal(r["score"]) for r in doc["institutions"] if r["score"]}
    assert series_of(option, "score") == {k: scores[k] for k in option["dl_keys"]}
    assert "villages" not in option["dl_keys"]
    assert 'id="no-budget"' in html  # the Zhuji bundle buys at fixed prices: no budget


def test_a_clerk_is_sent_to_their_own_institution(site: Site) -> None:
    plain = site.get("clerk", "/")
    assert plain.status_code == 303 and plain.headers["location"] == "/institutions/C01"
    dated = site.get("clerk2", "/", year=YEAR)
    assert dated.status_code == 303
    assert dated.headers["location"] == f"/institutions/C02?year={YEAR}"


def test_signed_out_goes_to_the_sign_in_page(site: Site) -> None:
    page = site.anonymous().get("/", params={"year": YEAR}, headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=/")


def test_the_year_defaults_to_the_latest_with_records(sqlite_site: Site) -> None:
    app = sqlite_site.service
    years = [y for y in range(2020, 2031) if app.equivalents(str(y))["institutions"]]
    page = sqlite_site.get("auditor", "/")
    assert page.status_code == 200
    assert f'id="ov-year" data-value="{max(years)}"' in page.text
    assert f'<option value="{YEAR}"' in page.text and 'for="year"' in page.text


def test_a_year_that_is_not_a_year_is_refused(sqlite_site: Site) -> None:
    assert sqlite_site.get("admin", "/", year="twenty").status_code == 422
    assert sqlite_site.get("admin", "/", year=99999).status_code == 422


def test_the_same_page_in_english(sqlite_site: Site) -> None:
    client = sqlite_site.client("admin")
    client.cookies.set("lang", "en")
    try:
        page = client.get("/", params={"year": YEAR}, headers={"Accept": "text/html"})
    finally:
        client.cookies.delete("lang")
    assert page.status_code == 200 and "County overview" in page.text
    assert chart_of(page.text, "ov-monthly")["xAxis"]["data"][0] == f"Jan {YEAR}"
