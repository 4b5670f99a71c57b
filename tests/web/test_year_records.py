"""A year's explanation links to all its service records (as a month's does), and that
listing's totals — count, quantity, equivalents — are the whole year's, a page at a time."""

from __future__ import annotations

from decimal import Decimal

from tests.web.conftest import Site
from tests.web.test_explain_pages import YEAR, attributes


def href_of(text: str, anchor_id: str) -> str:
    found = [a["href"] for a in attributes(text, f'id="{anchor_id}"')]
    assert len(found) == 1, anchor_id
    return found[0]


def test_a_year_page_links_to_all_the_records_of_the_year_with_exact_totals(site: Site) -> None:
    page = site.get("auditor", "/explain/institution/C01", period="2024")
    assert page.status_code == 200
    link = href_of(page.text, "all-records-link")
    assert link.startswith("/explain/institution/C01/records?period=2024&")
    listing = site.client("auditor").get(link, headers={"Accept": "text/html"})
    assert listing.status_code == 200
    every = site.service.records("C01", "2024")["records"]
    figures = {
        f["id"]: f["data-value"]
        for f in attributes(listing.text, r'id="records-[a-z]+" data-value')
    }
    assert int(figures["records-count"]) == len(every)
    assert Decimal(figures["records-quantity"]) == sum(Decimal(r["quantity"]) for r in every)
    items = site.service.explain("C01", YEAR)["equivalents_by_item"]
    assert int(figures["records-count"]) == sum(r["records"] for r in items)
    assert Decimal(figures["records-equivalents"]) == sum(Decimal(r["equivalents"]) for r in items)
    shown = attributes(listing.text, 'class="record"')
    assert len(shown) == min(50, len(every))
    assert [(r["data-month"], r["data-item"]) for r in shown] == sorted(
        (r["data-month"], r["data-item"]) for r in shown
    )
    month = site.get("auditor", "/explain/institution/C01", period="2024-03")
    assert href_of(month.text, "all-records-link").startswith(
        "/explain/institution/C01/records?period=2024-03&"
    )
