"""The explain pages: from an institution's amount down to its components, the rule steps
and parameters, the items and the service records, and back; staff and community
explanations; a clerk only ever sees their own."""

from __future__ import annotations

import html
import re
from decimal import Decimal

from dangliang.domain.periods import Period
from tests.web.conftest import Site

YEAR = Period.of("2024")


def attributes(text: str, tag_pattern: str) -> list[dict[str, str]]:
    """The attributes of every start tag matching `tag_pattern` (a regex on the whole tag)."""
    found = []
    for tag in re.findall(r"<[a-z]+\s[^>]*>", text):
        if re.search(tag_pattern, tag):
            found.append({k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)})
    return found


def href_of(text: str, anchor_id: str) -> str:
    """The link of the anchor with this id."""
    found = re.search(r'<a [^>]*id="' + anchor_id + r'"[^>]*href="([^"]+)"', text)
    assert found, anchor_id
    return html.unescape(found.group(1))


def test_the_components_on_the_page_are_the_applications(site: Site) -> None:
    page = site.get("admin", "/explain/institution/C01", period="2024")
    assert page.status_code == 200
    expected = site.service.explain("C01", YEAR)
    shown = {a["data-component"]: a["data-value"] for a in attributes(page.text, "data-component=")}
    components = expected["result"]["components"]
    assert {k: shown[k] for k in components} == components
    assert shown["total"] == expected["result"]["total"] == expected["amount"]
    assert shown["settlement"] == expected["result"]["settlement"]
    assert f'id="explain-amount" data-value="{expected["amount"]}"' in page.text
    # each component links one level down, at the same log position
    link = href_of(page.text, "component-basic_medical")
    assert link == (
        f"/explain/institution/C01?period=2024&component=basic_medical"
        f"&position={expected['position']}"
    )


def test_a_component_shows_its_rules_parameters_and_clauses(site: Site) -> None:
    expected = site.service.explain("C01", YEAR, component="basic_medical")
    page = site.get("admin", "/explain/institution/C01", period="2024", component="basic_medical")
    assert page.status_code == 200
    assert f'id="explain-amount" data-value="{expected["amount"]}"' in page.text
    params = {a["data-path"]: a for a in attributes(page.text, 'class="param"')}
    for step in expected["steps"]:
        assert f'data-rule="{step["rule"]}"' in page.text
        assert html.escape(step["clause"]) in page.text
        for p in step["parameters"]:
            shown = params[p["path"]]
            assert shown["data-effective-from"] == p["effective_from"]
            assert html.escape(p["reference"], quote=False) in page.text
    assert params["unit_price.basic_medical"]["data-value"] == "12.5"
    assert "诸暨方案 二(四)3" in page.text
    crumbs = re.search(r'<nav class="breadcrumb"[^>]*>(.*?)</nav>', page.text, re.S)
    assert crumbs and "概览" in crumbs.group(1) and 'href="/institutions/C01"' in crumbs.group(1)


def test_from_a_component_to_an_item_to_its_records_and_back(site: Site) -> None:
    """The walk a finance officer takes, as the C01 clerk: the records behind an item add up
    to the item's equivalents on the component page."""
    page = site.get("clerk", "/explain/institution/C01", period="2024", component="basic_medical")
    assert page.status_code == 200
    items = attributes(page.text, r'id="item-')
    expected = site.service.explain("C01", YEAR, component="basic_medical")["equivalents_by_item"]
    for item in items:
        rows = [r for r in expected if r["item"] == item["data-item"]]
        assert Decimal(item["data-equivalents"]) == sum(Decimal(r["equivalents"]) for r in rows)
        assert int(item["data-records"]) == sum(r["records"] for r in rows)
    biggest = max(items, key=lambda i: int(i["data-records"]))
    link = href_of(page.text, f"records-link-{biggest['data-item']}")
    records = site.client("clerk").get(link, headers={"Accept": "text/html"})
    assert records.status_code == 200
    listed = attributes(records.text, 'class="record"')
    assert len(listed) == int(biggest["data-records"])
    assert {r["data-item"] for r in listed} == {biggest["data-item"]}
    total = sum(Decimal(r["data-equivalents"]) for r in listed)
    assert total == Decimal(biggest["data-equivalents"])
    assert f'id="records-equivalents" data-value="{biggest["data-equivalents"]}"' in records.text
    # every record is one the application lists, with its HIS id
    app_records = site.service.records("C01", "2024", item=biggest["data-item"])["records"]
    assert sorted(r["data-source-id"] for r in listed) == sorted(
        r["source_id"] for r in app_records
    )
    # and back up: the breadcrumb leads to the item on the component page
    back = href_of(records.text, "back-to-item")
    assert back.startswith("/explain/institution/C01?period=2024&component=basic_medical")
    assert back.endswith(f"#item-{biggest['data-item']}")


def test_records_are_paged_fifty_at_a_time(sqlite_site: Site) -> None:
    every = sqlite_site.service.records("C01", "2024")["records"]
    assert len(every) > 100  # the test county has enough for three pages or more
    pages = -(-len(every) // 50)
    seen: list[str] = []
    for number in range(1, pages + 1):
        page = sqlite_site.get(
            "admin", "/explain/institution/C01/records", period="2024", page=number
        )
        assert page.status_code == 200
        assert f'id="pager" data-page="{number}" data-pages="{pages}"' in page.text
        ids = [r["data-source-id"] for r in attributes(page.text, 'class="record"')]
        assert len(ids) == (50 if number < pages else len(every) - 50 * (pages - 1))
        assert ('id="page-next"' in page.text) == (number < pages)
        seen += ids
    assert len(seen) == len(every)
    assert sorted(seen) == sorted(r["source_id"] for r in every)
    first = sqlite_site.get("admin", "/explain/institution/C01/records", period="2024", page=1)
    second = sqlite_site.get("admin", "/explain/institution/C01/records", period="2024", page=2)
    assert attributes(first.text, 'class="record"') != attributes(second.text, 'class="record"')
    beyond = sqlite_site.get(
        "admin", "/explain/institution/C01/records", period="2024", page=pages + 1
    )
    assert beyond.status_code == 404


def test_a_clerk_sees_only_their_institutions(site: Site) -> None:
    for path in ("/explain/institution/C02", "/explain/institution/C02/records"):
        assert site.get("clerk", path, period="2024").status_code == 403
        assert site.get("clerk2", path.replace("C02", "C01"), period="2024").status_code == 403
    refused = site.get("clerk", "/explain/institution/C02/records", period="2024", item="BM001")
    assert refused.status_code == 403
    assert site.get("clerk", "/explain/institution/C01V01", period="2024").status_code == 200
    assert (
        site.get("clerk", "/explain/institution/C01V01/records", period="2024").status_code == 200
    )


def test_a_persons_performance_pay_is_explained(site: Site) -> None:
    distribution = site.service.distribute(YEAR, institution="C02").distributions["C02"]
    staff_id = sorted(distribution.staff)[0]
    expected = site.service.explain_staff(staff_id, YEAR)
    page = site.get("auditor", f"/explain/staff/{staff_id}", period="2024")
    assert page.status_code == 200
    share = expected["institutions"][0]["share"]
    assert f'data-key="total" data-value="{share["total"]}"' in page.text
    assert f'data-key="performance_pay" data-value="{share["performance_pay"]}"' in page.text
    assert site.get("clerk", f"/explain/staff/{staff_id}", period="2024").status_code == 403
    assert site.get("clerk2", f"/explain/staff/{staff_id}", period="2024").status_code == 200


def test_a_communitys_fund_figures_are_explained(site: Site) -> None:
    expected = site.service.explain_insurance("YGT02", YEAR)
    page = site.get("admin", "/explain/community/YGT02", period="2024")
    assert page.status_code == 200
    for key, value in expected["figures"].items():
        assert f'id="figure-{key}" data-value="{value}"' in page.text
    assert 'data-chart-for="community-spending-chart"' in page.text
    assert site.get("clerk", "/explain/community/YGT02", period="2024").status_code == 403
    own = site.get("clerk", "/explain/community/YGT01", period="2024-Q1")
    assert own.status_code == 200 and 'data-rule="fund' not in own.text


def test_bad_periods_and_components_are_refused_with_a_page(sqlite_site: Site) -> None:
    for query in (
        {"period": "2024-13"},
        {"period": "24"},
        {"period": "1900"},
        {"period": "2024", "component": "bogus"},
        {"period": "2024-03", "component": "settlement"},
    ):
        page = sqlite_site.get("admin", "/explain/institution/C01", **query)
        assert page.status_code == 422, query
        assert "<!doctype html>" in page.text
    assert sqlite_site.get("admin", "/explain/community/YGT01", period="2024-Q5").status_code == 422
    unknown = sqlite_site.get("admin", "/explain/institution/ZZ99", period="2024")
    assert unknown.status_code == 404


def test_signed_out_people_are_sent_to_sign_in(sqlite_site: Site) -> None:
    found = sqlite_site.anonymous().get(
        "/explain/institution/C01?period=2024", headers={"Accept": "text/html"}
    )
    assert found.status_code == 303 and found.headers["location"].startswith("/login")
