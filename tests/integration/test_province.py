"""The province (省级汇总): counties as schemas of one PostgreSQL database, read by one query.

Two counties are built through their own applications (`?schema=`), one with approved and
paid subsidy and fund runs, one with records only; the province's figures must equal what
each county's application says about itself. With `DANGLIANG_TEST_CITUS_URL` (a Citus
coordinator, e.g. the local cluster) the same counties are built as distributed schemas and
the same report runs through the coordinator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dangliang.application import Dangliang, bootstrap
from dangliang.application.province import NotAProvince, Province
from dangliang.cli.main import main
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.domain.periods import Period
from dangliang.ledger import bulk
from dangliang.ledger.compact import SERVICE_RECORD_TOPIC
from dangliang.settings import Settings, parse_db_url
from tests.conftest import (
    PG_BASE_URL,
    _admin_connect,
    _with_dbname,
    load_reference,
    require_postgres,
)

YEAR = 2024
TODAY = date(2025, 2, 1)
FUND_KINDS = ("communities", "enrolment", "claims", "fund_years", "community_scores")
CITUS_URL = os.environ.get("DANGLIANG_TEST_CITUS_URL", "")


@dataclass
class Built:
    url: str  # the province database, no schema
    expected: dict[str, dict[str, Decimal]]  # county → figures its own application gives


def _county_figures(app: Dangliang) -> dict[str, Decimal]:
    found = app.equivalents(str(YEAR))
    rows = found["institutions"]
    runs = [r for r in app.payout_runs().values() if r.state in ("approved", "paid")]

    def payable(ledger: str, *, paid: bool = False) -> Decimal:
        return sum(
            (
                Decimal(r.results["totals"]["payable"])
                for r in runs
                if r.ledger == ledger and (r.state == "paid" or not paid)
            ),
            Decimal(0),
        )

    return {
        "records": Decimal(sum(int(r["records"]) for r in rows)),
        "equivalents": sum(
            (Decimal(r["basic_medical"]) + Decimal(r["basic_public_health"]) for r in rows),
            Decimal(0),
        ),
        "subsidy_payable": payable("compensation"),
        "subsidy_paid": payable("compensation", paid=True),
        "fund_payable": payable("insurance"),
    }


def _build_counties(
    base: str, counties: dict[str, GeneratedCounty]
) -> dict[str, dict[str, Decimal]]:
    expected = {}
    for i, (schema, county) in enumerate(counties.items()):
        app = bootstrap(Settings(f"{base}?schema={schema}"))
        try:
            load_reference(app, county, actor="t")
            app.import_services(county.files["services"], actor="t", today=TODAY)
            if i == 0:  # the first county pays a month and runs its fund; the second does not
                app.adopt_policy("zhuji", reference="测试", actor="t")
                for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
                    app.load_inputs(kind, county.files[kind.replace("-", "_")], actor="t")
                run = app.run_payout(Period(YEAR, 1), actor="t", today=TODAY)
                app.approve_payout(run.run_id, reference="审批", actor="复核人")
                app.mark_payout_paid(run.run_id, reference="付款", actor="t")
                feb = app.run_payout(Period(YEAR, 2), actor="t", today=TODAY)
                app.approve_payout(feb.run_id, reference="审批", actor="复核人")
                app.run_payout(Period(YEAR, 3), actor="t", today=TODAY)  # a draft: not counted
                for kind in FUND_KINDS:
                    app.import_insurance(kind, county.files[kind], actor="t", today=TODAY)
                app.adopt_policy(
                    "deqing_insurance", reference="测试", actor="t", scheme="insurance"
                )
                fund = app.run_insurance(Period(YEAR, 1), actor="t", today=TODAY)
                app.approve_payout(fund.run_id, reference="审批", actor="复核人")
            expected[schema] = _county_figures(app)
        finally:
            app.close()
    return expected


@pytest.fixture(scope="module")
def small_counties(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GeneratedCounty]:
    root = tmp_path_factory.mktemp("province")
    return {
        "county_a": generate(root / "a", records=2_000, seed=11, year=YEAR),
        "county_b": generate(root / "b", records=1_200, seed=12, year=YEAR),
    }


@pytest.fixture(scope="module")
def plain_province(small_counties: dict[str, GeneratedCounty]) -> Iterator[Built]:
    require_postgres()
    name = f"dl_province_{os.getpid()}"
    with _admin_connect(PG_BASE_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(PG_BASE_URL, name)
    try:
        yield Built(url, _build_counties(url, small_counties))
    finally:
        with _admin_connect(PG_BASE_URL) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _check(built: Built) -> None:
    province = Province(parse_db_url(built.url))
    try:
        assert province.counties() == sorted(built.expected)
        report = province.report(YEAR)
    finally:
        province.close()
    assert [c.county for c in report.counties] == sorted(built.expected)
    for c in report.counties:
        own = built.expected[c.county]
        assert not c.cube_behind
        assert c.records == own["records"] > 0
        assert c.equivalents == own["equivalents"] > 0
        assert c.subsidy_payable == own["subsidy_payable"]
        assert c.subsidy_paid == own["subsidy_paid"]
        assert c.fund_payable == own["fund_payable"]
    first, second = report.counties
    assert first.subsidy_payable > first.subsidy_paid > 0  # February approved, not yet paid
    assert first.fund_budget and first.fund_spending and first.fund_use and not first.fund_settled
    assert first.subsidy_entitlement is None  # no settlement run yet
    assert (second.subsidy_payable, second.fund_budget, second.fund_use) == (0, None, None)
    assert report.totals["equivalents"] == first.equivalents + second.equivalents


def test_the_province_report_equals_what_each_county_says(plain_province: Built) -> None:
    _check(plain_province)


def test_the_province_command_lists_and_reports(plain_province: Built) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["province", "counties", "--db", plain_province.url])
    assert listed.exit_code == 0, listed.output
    assert listed.output.split() == ["county_a", "county_b"]
    report = ["province", "report", "--year", str(YEAR), "--db", plain_province.url]
    shown = runner.invoke(main, report)
    assert shown.exit_code == 0, shown.output
    assert "county_a" in shown.output and "合计 total" in shown.output
    as_json = runner.invoke(main, [*report, "--json", "--county", "county_b"])
    assert as_json.exit_code == 0, as_json.output
    assert '"county": "county_b"' in as_json.output and "county_a" not in as_json.output
    unknown = runner.invoke(main, [*report, "--county", "x"])
    assert unknown.exit_code == 2 and "no such county: x" in unknown.output


def test_a_province_is_postgresql_without_a_schema(tmp_path: Path) -> None:
    with pytest.raises(NotAProvince, match="one schema per county"):
        Province(parse_db_url(f"sqlite:///{tmp_path}/x.db"))
    with pytest.raises(NotAProvince, match="without"):
        Province(parse_db_url(f"{PG_BASE_URL}?schema=county_a"))


@pytest.fixture(scope="module")
def citus_province(small_counties: dict[str, GeneratedCounty]) -> Iterator[Built]:
    if not CITUS_URL:
        pytest.skip("Citus tests skipped: set DANGLIANG_TEST_CITUS_URL to a Citus coordinator")
    schemas = {f"citus_{k}": v for k, v in small_counties.items()}
    with _admin_connect(CITUS_URL) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute("SET citus.enable_schema_based_sharding TO on")
        for schema in schemas:  # created through the coordinator: distributed schemas
            conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Built(CITUS_URL, _build_counties(CITUS_URL, schemas))
    finally:
        with _admin_connect(CITUS_URL) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_on_citus_each_county_is_a_distributed_schema_on_a_worker(citus_province: Built) -> None:
    province = Province(parse_db_url(citus_province.url))
    try:
        placed = province.distributed()
        names = [n for n in province.counties() if n in citus_province.expected]
        assert names == sorted(citus_province.expected)
        assert set(names) <= set(placed)
        report = province.report(YEAR, names)
    finally:
        province.close()
    assert report.distributed
    for c in report.counties:
        own = citus_province.expected[c.county]
        assert (c.records, c.equivalents, c.subsidy_payable, c.fund_payable) == (
            own["records"],
            own["equivalents"],
            own["subsidy_payable"],
            own["fund_payable"],
        )


def test_on_citus_a_record_stored_since_the_look_up_is_skipped_and_counted(
    small_counties: dict[str, GeneratedCounty],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch that meets a record another import stored since its look-up goes again
    skipping it (bulk.PostgresBulkWriter). On a distributed schema Citus relays the shard's
    refusal of the COPY as an internal error and counts the rows an `INSERT … ON CONFLICT`
    was offered, not those it stored: the counts must still be the true ones."""
    if not CITUS_URL:
        pytest.skip("Citus tests skipped: set DANGLIANG_TEST_CITUS_URL to a Citus coordinator")
    county = next(iter(small_counties.values()))
    with county.files["services"].open(encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    some, every = tmp_path / "some.csv", tmp_path / "every.csv"
    some.write_text("\n".join([header, *rows[200:600]]) + "\n", encoding="utf-8")
    every.write_text("\n".join([header, *rows[:1000]]) + "\n", encoding="utf-8")
    schema = "citus_skip"
    with _admin_connect(CITUS_URL) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute("SET citus.enable_schema_based_sharding TO on")
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        app = bootstrap(Settings(f"{CITUS_URL}?schema={schema}"))
        try:
            load_reference(app, county)
            app.import_services(some, actor="t", today=TODAY)
            monkeypatch.setattr(bulk.PostgresBulkWriter, "first_events", lambda self, ids: {})
            result = app.import_services(every, actor="t", today=TODAY, batch_size=250)
            assert (result.inserted, result.already_present) == (600, 400)
            assert app.verify_log()["ok"]
        finally:
            app.close()
        with _admin_connect(CITUS_URL) as conn:
            stored = conn.execute(
                f'SELECT count(*), count(DISTINCT originator_id) FROM "{schema}".dangliang_events '
                "WHERE topic = %s",
                (SERVICE_RECORD_TOPIC,),
            ).fetchone()
        assert stored == (1000, 1000)
    finally:
        with _admin_connect(CITUS_URL) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
