"""The workbench's reads through the application (`application.workbench_queries`): names,
the years with service records and a scheme's policy history with who, when, why and
old → new; and the pages' views lasting only as long as the application's computation — on
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from dangliang.application import Dangliang
from dangliang.domain.periods import Period
from dangliang.domain.service import ServiceRecord
from dangliang.web import county_reads
from tests.conftest import PrepareApp
from tests.integration.test_compensation import YEAR, compensation


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_names_come_from_the_registry_as_loaded(reference_app: Dangliang, county: Any) -> None:
    institutions = {r["code"]: r["name"] for r in rows_of(county.files["institutions"])}
    items = {r["item_code"]: r["name"] for r in rows_of(county.files["catalogue"])}
    assert reference_app.institution_names() == institutions
    assert set(reference_app.institution_names()) == set(reference_app.institutions())
    assert reference_app.item_names() == items
    assert reference_app.service_years() == []  # reference data only: no service record yet
    assert reference_app.policy_history() == []
    assert reference_app.log_head() == reference_app.catch_up()


def test_the_years_run_from_the_first_to_the_last_month_with_records(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    assert app.service_years() == [YEAR]
    app.log.save(
        ServiceRecord.record(
            institution_code="C01",
            source_id="OLD-1",
            staff_id="S-OLD",
            item_code="BM001",
            quantity=Decimal("1"),
            service_date=date(YEAR - 2, 11, 3),
            actor="t",
        )
    )
    assert app.service_years() == [YEAR, YEAR - 1, YEAR - 2]  # read after catching up


def test_the_policy_history_tells_who_when_why_and_old_to_new(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    path = "unit_price.basic_medical"
    before = app.policy().tree.parameter(path).in_force(date(YEAR, 7, 1))
    assert before is not None
    app.change_parameter(
        path, "15", start=date(YEAR, 7, 1), reason="县府办〔2024〕9号", approver="局长", actor="amy"
    )
    after_change = app.log_head()
    app.change_parameter(
        path,
        "16",
        start=date(YEAR, 10, 1),
        reason="县府办〔2024〕12号",
        approver="局长",
        actor="bo",
    )
    app.adopt_policy("point_value", reference="县府办〔2025〕1号", actor="cy")

    history = app.policy_history()
    assert [e.kind for e in history] == ["adoption", "change", "change", "adoption"]
    adopted, first, second, again = history
    assert adopted.reference == "县府办〔2024〕1号（测试）" and adopted.actor == "t"
    assert adopted.bundle == "zhuji.yaml" and adopted.changed_paths == []
    assert (first.path, first.effective_from, first.actor, first.approver) == (
        path,
        f"{YEAR}-07-01",
        "amy",
        "局长",
    )
    assert first.reference == "县府办〔2024〕9号"
    assert Decimal(first.old) == before.value and Decimal(first.new) == 15
    assert Decimal(second.old) == 15 and Decimal(second.new) == 16  # the value it replaced
    assert again.bundle == "point_value.yaml" and again.actor == "cy"
    assert again.digest == app.policy().digest and again.changed_paths  # what it changed
    positions = [e.position for e in history]
    assert positions == sorted(positions) and positions[-1] == app.log_head()
    assert all(e.at is not None for e in history)
    assert [e.at for e in history] == sorted(e.at for e in history if e.at)

    as_then = app.policy_history(position=after_change)  # the log as it stood then
    assert [e.position for e in as_then] == positions[:2]
    assert app.policy_history("insurance") == []  # the fund's scheme has its own history


def test_the_pages_views_last_as_long_as_the_applications_computation(
    prepared_app: PrepareApp, county: Any
) -> None:
    """`web.county_reads` keeps nothing the application does not: its derived views follow
    the computation `app.compute` returns, and a new record (a later position) drops them."""
    app = prepared_app(compensation(county))
    first = county_reads.year_figures(app, YEAR)
    assert first.computation is app.compute(Period(YEAR))
    assert county_reads.year_figures(app, YEAR) is first
    items = county_reads.items_of(app, first, "C01")
    assert items == app.explain("C01", Period(YEAR))["equivalents_by_item"]
    assert county_reads.items_of(app, first, "C01") is items
    assert county_reads.recorded_advances(app, first).runs == []

    app.log.save(
        ServiceRecord.record(
            institution_code="C01",
            source_id="MEMO-1",
            staff_id="S-MEMO",
            item_code="BM001",
            quantity=Decimal("100"),
            service_date=date(YEAR, 3, 10),
            actor="t",
        )
    )
    later = county_reads.year_figures(app, YEAR)
    assert later is not first and later.position > first.position
    assert later.computation is app.compute(Period(YEAR))
    c01 = later.institution("C01")
    computed = {r["code"]: r for r in later.computation.as_json()["institutions"]}["C01"]
    assert c01 is not None and {k: v for k, v in c01.items() if k != "by_month"} == computed
    again = county_reads.items_of(app, later, "C01")
    bm001 = [r for r in again if r["item"] == "BM001" and r["month"] == f"{YEAR}-03"]
    before = [r for r in items if r["item"] == "BM001" and r["month"] == f"{YEAR}-03"]
    assert sum(int(r["records"]) for r in bm001) == sum(int(r["records"]) for r in before) + 1

    app.computation_cache.clear()  # the application no longer keeps it: neither do the pages
    assert county_reads.year_figures(app, YEAR) is not later
