"""The institutions: their list, and one institution's year (GET /institutions/{code})."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pytest

from dangliang.domain.periods import Period
from dangliang.policy.subsidy_records import COMPONENTS
from tests.web.conftest import Site
from tests.web.test_overview_pages import chart_of, figure

YEAR = 2024


def institution(site: Site, code: str = "C01", who: str = "admin") -> str:
    page = site.get(who, f"/institutions/{code}", year=YEAR)
    assert page.status_code == 200, page.text[:500]
    return page.text


def names_of(site: Site) -> dict[str, str]:
    doc = site.service.compute(Period(YEAR)).as_json()
    return {r["code"]: r["name"] for r in doc["institutions"]}


def outsiders(site: Site, who: str) -> list[str]:
    """The codes and names a clerk may not see."""
    scope = site.service.users.principal({"clerk": "C01填报员", "clerk2": "C02填报员"}[who]).scope  # type: ignore[union-attr]
    assert scope
    names = names_of(site)
    return [
        text
        for code in site.service.institutions()
        if code not in scope
        for text in (code, names.get(code, ""))
        if text
    ]


def leaked(html: str, forbidden: list[str]) -> list[str]:
    """Forbidden codes (as a code, not inside a longer one) or names found in the page."""
    return [
        text
        for text in forbidden
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(text)}(?![0-9])", html)
    ]


def test_the_list_shows_every_institution_to_the_bureau(site: Site) -> None:
    page = site.get("auditor", "/institutions")
    assert page.status_code == 200
    codes = re.findall(r'<tr data-code="([^"]+)"', page.text)
    assert codes == sorted(site.service.institutions())
    assert 'href="/institutions/C01V01"' in page.text and "村卫生室" in page.text


def test_a_clerk_lists_only_their_institution_and_its_clinics(site: Site) -> None:
    page = site.get("clerk", "/institutions")
    assert page.status_code == 200
    scope = site.service.users.principal("C01填报员").scope  # type: ignore[union-attr]
    assert set(re.findall(r'<tr data-code="([^"]+)"', page.text)) == scope
    assert leaked(page.text, outsiders(site, "clerk")) == []
    everyone = site.get("admin", "/institutions").text  # the check does find them
    assert "C02" in leaked(everyone, outsiders(site, "clerk"))


@pytest.mark.parametrize("who, code", [("clerk", "C01"), ("clerk", "C01V01"), ("clerk2", "C02")])
def test_a_clerks_page_holds_nothing_of_another_institution(
    site: Site, who: str, code: str
) -> None:
    html = institution(site, code, who)
    assert 'data-chart-for="inst-monthly"' in html
    assert leaked(html, outsiders(site, who)) == []


@pytest.mark.parametrize(
    "who, path",
    [
        ("clerk", "/institutions/C02"),
        ("clerk", "/institutions/C02V01"),
        ("clerk2", "/institutions/C01"),
        ("clerk", "/institutions/NOPE"),
    ],
)
def test_a_clerk_may_not_open_another_institution(site: Site, who: str, path: str) -> None:
    assert site.get(who, path).status_code == 403
    refused = site.get(who, path, year=YEAR)
    assert refused.status_code == 403 and "机构填报员只能查看本机构" in refused.text


def test_signed_out_goes_to_the_sign_in_page(site: Site) -> None:
    for path in ("/institutions", "/institutions/C01"):
        page = site.anonymous().get(path, params={"year": YEAR}, headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")


def test_an_unknown_institution_is_not_found(sqlite_site: Site) -> None:
    assert sqlite_site.get("admin", "/institutions/NOPE", year=YEAR).status_code == 404
    assert sqlite_site.get("admin", "/institutions/C01", year="x").status_code == 422


def test_the_top_items_are_the_applications(site: Site) -> None:
    html = institution(site)
    rows = re.findall(
        r'<tr data-item="([^"]+)" data-quantity="([^"]+)" data-equivalents="([^"]+)"', html
    )
    assert 0 < len(rows) <= 20
    found = site.service.equivalents(str(YEAR), institution="C01", by="item")
    items = {
        i["code"]: Decimal(i["basic_medical"]) + Decimal(i["basic_public_health"])
        for i in found["institutions"][0]["item"]
    }
    quantities: dict[str, Decimal] = defaultdict(Decimal)
    for cell in site.service.explain("C01", Period(YEAR))["equivalents_by_item"]:
        quantities[cell["item"]] += Decimal(cell["quantity"])
    for code, quantity, equivalents in rows:
        assert Decimal(equivalents) == items[code]
        assert Decimal(quantity) == quantities[code]
    shown = [Decimal(e) for _, _, e in rows]
    assert shown == sorted(shown, reverse=True)
    assert shown[0] == max(items.values())  # none left out above the last one shown
    assert all(v <= shown[-1] for c, v in items.items() if c not in {r[0] for r in rows})


def test_the_months_and_the_components_are_the_computation(site: Site) -> None:
    html = institution(site)
    doc = site.service.compute(Period(YEAR)).as_json()
    c01 = next(r for r in doc["institutions"] if r["code"] == "C01")
    option = chart_of(html, "inst-monthly")
    assert len(option["xAxis"]["data"]) == 12
    for category in ("basic_medical", "basic_public_health"):
        points = next(s["data"] for s in option["series"] if s["id"] == category)
        assert len(points) == 12
        assert sum(Decimal(str(v)) for v in points) == Decimal(
            c01["equivalents"][category]["actual"]
        )
    one = site.service.equivalents(str(YEAR), institution="C01")["institutions"][0]
    assert figure(html, "fig-basic-medical") == Decimal(one["basic_medical"])
    assert figure(html, "fig-total") == Decimal(c01["total"])
    table = re.search(r'id="table-components">.*?</table>', html, re.S)
    assert table
    for c in COMPONENTS:
        amount = re.search(
            rf'<tr data-key="{c}">.*?href="/explain/institution/C01\?period={YEAR}&amp;'
            rf'component={c}" data-value="([^"]+)"',
            table.group(0),
            re.S,
        )
        assert amount and Decimal(amount.group(1)) == Decimal(c01["components"][c])


def test_the_staff_shares_are_the_distribution(site: Site) -> None:
    html = institution(site)
    found = site.service.distribute(Period(YEAR), institution="C01").as_json()
    staff = found["institutions"][0]["staff"]
    rows = re.findall(r'<tr data-staff="([^"]+)" data-value="([^"]+)"', html)
    assert {s: Decimal(v) for s, v in rows} == {
        s["staff_id"]: Decimal(s["performance_pay"]) for s in staff
    }
    option = chart_of(html, "inst-shares")
    shares = dict(zip(option["dl_keys"], option["series"][0]["data"], strict=True))
    assert {k: Decimal(str(v)) for k, v in shares.items()} == {
        s["staff_id"]: Decimal(s["performance_pay"]) for s in staff
    }
    pool = found["institutions"][0]["totals"]["pool"]
    assert figure(html, "fig-pool") == Decimal(pool)


def test_a_year_without_a_pool_says_so(sqlite_site: Site) -> None:
    page = sqlite_site.get("admin", "/institutions/C01", year=2023)
    assert page.status_code == 200 and 'id="no-pay"' in page.text


def test_a_centre_lists_its_village_clinics(sqlite_site: Site) -> None:
    html = institution(sqlite_site)
    clinics = sorted(
        c for c, (_, parent) in sqlite_site.service.institutions().items() if parent == "C01"
    )
    table = re.search(r'id="table-clinics".*?</table>', html, re.S)
    assert table
    assert re.findall(r'<tr data-key="(C01V\d+)">', table.group(0)) == clinics
    clinic = institution(sqlite_site, clinics[0])
    assert 'id="table-clinics"' not in clinic
    assert f'href="/institutions/C01?year={YEAR}"' in clinic  # up to its centre


def test_a_person_s_pay_and_a_community_s_figures_link_to_their_explanations(
    sqlite_site: Site,
) -> None:
    page = sqlite_site.get("admin", "/institutions/C01", year=2024).text
    staff = re.findall(r'<tr data-staff="([^"]+)"', page)
    assert staff
    for staff_id in staff[:3]:
        assert f"/explain/staff/{staff_id}?period=2024" in page
        assert (
            sqlite_site.get("admin", f"/explain/staff/{staff_id}", period=2024).status_code == 200
        )
    overview = sqlite_site.get("admin", "/", year=2024).text
    for code in ("YGT01", "YGT02"):
        assert f"/explain/community/{code}?period=2024" in overview
        assert (
            sqlite_site.get("admin", f"/explain/community/{code}", period=2024).status_code == 200
        )
