"""A page of the service records behind an institution's equivalents (`records_page`), on
SQLite and PostgreSQL: the pages put together are `records` (the whole list), in month, item
and import order, and the totals of the whole list are exact, also after corrections that
move records between cells, change quantities and void them, and as at an earlier position."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dangliang.application import Dangliang
from dangliang.importers.formats import CORRECTIONS
from dangliang.projections.equivalents_queries import ValueBook
from tests.conftest import PrepareApp
from tests.integration.test_compensation import compensation

KEYS = ("source_id", "item", "month", "staff_id", "compliant", "quantity")


def correct(app: Dangliang, county: Any, tmp_path: Path) -> tuple[str, str]:
    """C01's records corrected every way a correction can move them, and one voided; the
    source id of the record moved to July and its new item."""
    with county.files["services"].open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["institution_code"] == "C01"]
    march = [r for r in rows if r["service_date"].startswith("2024-03")]
    other_item = next(r["item_code"] for r in rows if r["item_code"] != march[0]["item_code"])
    changes = [
        (march[0], "correct", {"item_code": other_item, "service_date": "2024-07-15"}),
        (march[1], "correct", {"quantity": "7"}),
        (march[2], "correct", {"compliant": "false"}),
        (march[3], "void", {}),
        (march[4], "correct", {"staff_id": march[5]["staff_id"]}),
    ]
    path = tmp_path / "corrections.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, list(CORRECTIONS.column_names), restval="")
        w.writeheader()
        for record, action, values in changes:
            w.writerow(
                {
                    "institution_code": "C01",
                    "source_id": record["source_id"],
                    "action": action,
                    "reason": "测试更正",
                    **values,
                }
            )
    app.import_corrections(path, actor="t", today=date(2025, 1, 31))
    return march[0]["source_id"], other_item


def every_page(app: Dangliang, period: str, limit: int, **query: Any) -> list[dict[str, Any]]:
    first = app.records_page("C01", period, offset=0, limit=limit, **query)
    rows = list(first["records"])
    while len(rows) < first["count"]:
        page = app.records_page("C01", period, offset=len(rows), limit=limit, **query)
        assert page["count"] == first["count"] and page["records"], "a page came back empty"
        rows += page["records"]
    return rows


def expected_totals(app: Dangliang, rows: list[dict[str, Any]], position: int) -> Any:
    with app.engine.connect() as conn:
        book = ValueBook(conn, position)
        value = {
            (r["item"], r["month"]): Decimal(book.value_e4(r["item"], r["month"])).scaleb(-4)
            for r in rows
        }
    quantity = sum((Decimal(r["quantity"]) for r in rows), Decimal(0))
    equivalents = sum(
        (Decimal(r["quantity"]) * value[(r["item"], r["month"])] for r in rows), Decimal(0)
    )
    return len(rows), quantity, equivalents


@pytest.mark.parametrize("limit", [50, 7])
def test_the_pages_together_are_the_whole_list_with_exact_totals(
    prepared_app: PrepareApp, county: Any, tmp_path: Path, limit: int
) -> None:
    app = prepared_app(compensation(county))
    before = app.catch_up()
    moved, new_item = correct(app, county, tmp_path)
    head = app.catch_up()
    assert head > before
    for period, item, position in [
        ("2024", None, None),
        ("2024", None, before),  # as the log stood before the corrections
        ("2024-03", None, None),
        ("2024-07", None, None),
        ("2024", "BM001", None),
        ("2023", None, None),  # no records: no rows, zero totals
    ]:
        query = {"item": item, "position": position}
        whole = app.records("C01", period, **query)["records"]
        paged = every_page(app, period, limit, **query)
        assert Counter(tuple(r[k] for k in KEYS) for r in paged) == Counter(
            tuple(r[k] for k in KEYS) for r in whole
        ), (period, item, position)
        assert [(r["month"], r["item"]) for r in paged] == sorted(
            (r["month"], r["item"]) for r in paged
        )
        first = app.records_page("C01", period, limit=limit, **query)
        assert first["position"] == (head if position is None else position)
        count, quantity, equivalents = expected_totals(app, whole, first["position"])
        assert (first["count"], first["quantity"], first["equivalents"]) == (
            count,
            quantity,
            equivalents,
        )
        # each row carries the item's value that month: its equivalents add up to the total
        assert sum(Decimal(r["quantity"]) * r["value_e4"] for r in paged) == equivalents * 10**4
    # the corrections are there: the record moved to July is listed in July, the voided not
    july = every_page(app, "2024-07", limit)
    assert [(r["item"], r["month"]) for r in july if r["source_id"] == moved] == [
        (new_item, "2024-07")
    ]
    now = {r["source_id"] for r in app.records("C01", "2024")["records"]}
    then = {r["source_id"] for r in app.records("C01", "2024", position=before)["records"]}
    assert len(now) == len(then) - 1


def test_a_page_past_the_end_is_empty_and_keeps_the_totals(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    first = app.records_page("C01", "2024", limit=50)
    beyond = app.records_page("C01", "2024", offset=first["count"], limit=50)
    assert beyond["records"] == []
    assert (beyond["count"], beyond["quantity"], beyond["equivalents"]) == (
        first["count"],
        first["quantity"],
        first["equivalents"],
    )
