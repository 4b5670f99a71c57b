"""Performance pay inside an institution, from events in the log, on SQLite and PostgreSQL:
every pool shared to the fen, the director outside it, the 60% rule, explanation per person,
and the same answer at a past position after later changes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from dangliang.application import Dangliang
from dangliang.domain import ids
from dangliang.domain.errors import DomainError
from dangliang.domain.inputs import InstitutionYear, StaffYear
from dangliang.domain.periods import Period
from tests.conftest import Preparation, Prepare, PrepareApp, sqlite_only
from tests.integration.test_compensation import YEAR, compensation

D = Decimal


def c01_staff(app: Dangliang) -> list[str]:
    registry = app.registry()
    return sorted(s for s, postings in registry.staff_postings.items() if postings[-1][2] == "C01")


def record_pool(app: Dangliang, reward_share: str = "0.65") -> list[str]:
    staff = c01_staff(app)
    inst = InstitutionYear.open(institution_code="C01", year=YEAR, actor="t")
    inst.approve_pool(
        pool=D("2000000.00"), reward_share=D(reward_share), reference="核定", actor="t"
    )
    inst.report_surplus(surplus=D("100000.00"), share=D("0.50"), actor="t")
    inst.name_director(staff_id=staff[0], actor="t")
    people = []
    for n, staff_id in enumerate(staff[1:4]):
        year = StaffYear.open(staff_id=staff_id, year=YEAR, actor="t")
        year.assess(coefficient=D("1.10") - D(n) / 10, reference="个人考核", actor="t")
        people.append(year)
    people[0].record_outside_item(
        kind="family_doctor_fee", amount=D("3600.00"), reference="签约", actor="t"
    )
    app.log.save(inst, *people)
    return staff


def test_a_pool_is_shared_to_the_fen_with_the_director_outside(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    staff = record_pool(app)
    found = app.distribute(Period(YEAR), institution="C01")
    d = found.distributions["C01"]
    assert d.pool == D("2000000.00") and d.reward_pool == D("1300000.00")
    assert d.base_pool == D("700000.00") and d.surplus_redistributed == D("50000.00")
    shares = d.staff
    assert shares[staff[0]].performance_pay == 0  # the director is paid outside the pool
    paid = sum(
        s.base + s.reward + s.surplus + s.floor_top_up - s.floor_contribution
        for s in shares.values()
    )
    assert paid == d.pool + d.surplus_redistributed
    assert shares[staff[1]].outside == {"family_doctor_fee": D("3600.00")}
    assert any("no coefficient" in w for w in found.warnings)  # the others count with 1.00
    person = app.explain_staff(staff[1], Period(YEAR))
    assert person["institutions"][0]["institution"] == "C01"
    rules = [s["rule"] for s in person["institutions"][0]["steps"]]
    assert {"pool_split", "weights", "reward_part", "check"} <= set(rules)
    rows = person["institutions"][0]["equivalents_by_item"]
    weights = next(s for s in person["institutions"][0]["steps"] if s["rule"] == "weights")
    assert sum(D(r["equivalents"]) for r in rows) == D(weights["staff"]["equivalents"]) > 0
    with pytest.raises(DomainError):
        app.explain_staff("NOBODY", Period(YEAR))
    month = app.distribute(Period(YEAR, 3), institution="C01").distributions["C01"]
    assert month.pool == D("166666.67")  # a twelfth of the year's pool, to the fen


def test_a_reward_share_below_sixty_percent_is_refused(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    record_pool(app, reward_share="0.55")
    with pytest.raises(DomainError, match="60%"):
        app.distribute(Period(YEAR), institution="C01")


def test_a_past_distribution_is_reproduced_after_later_changes(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(compensation(county))
    staff = record_pool(app)
    before = app.distribute(Period(YEAR), institution="C01")
    year = app.log.repository.get(ids.staff_year_id(staff[2], YEAR))
    year.assess(coefficient=D("1.50"), reference="复核", actor="t")
    app.log.save(year)
    after = app.distribute(Period(YEAR), institution="C01")
    assert after.as_json() != before.as_json()
    again = app.distribute(Period(YEAR), institution="C01", position=before.position)
    assert again.as_json() == before.as_json()


def performance_inputs(county: Any) -> Preparation:
    """`compensation`, and the county's pools, staff coefficients and outside items."""

    def load(app: Dangliang) -> None:
        for kind in ("pools", "staff-coefficients", "outside-items"):
            app.load_inputs(kind, county.files[kind.replace("-", "_")], actor="t")

    return Preparation("performance-inputs", load, compensation(county))


def test_distribution_runs_monthly_provisional_then_final_with_the_difference(
    prepared_app: PrepareApp, county: Any, tmp_path: Path
) -> None:
    from datetime import date

    from dangliang.domain.payout import PayoutRefused

    app = prepared_app(compensation(county))
    staff = record_pool(app)
    after = date(YEAR + 1, 1, 10)
    months = []
    for m in (1, 2, 3):
        run = app.run_distribution(Period(YEAR, m), actor="maker", today=after)
        assert run.run_id == f"perf-{YEAR}-{m:02d}#1"
        with pytest.raises(PayoutRefused, match="maker-checker"):
            app.approve_payout(run.run_id, reference="x", actor="maker")
        app.approve_payout(run.run_id, reference="审批", actor="checker")
        months.append(run.run_id)
    final = app.run_distribution(Period(YEAR), actor="maker", today=after)
    people = {p["staff_id"]: p for p in final.results["institutions"][0]["staff"]}
    person = people[staff[1]]
    provisional = sum(
        D(p["performance_pay"])
        for run_id in months
        for p in app.payout_run(run_id).results["institutions"][0]["staff"]
        if p["staff_id"] == staff[1]
    )
    assert D(person["provisional_paid"]) == provisional > 0
    assert D(person["difference"]) == D(person["performance_pay"]) - provisional
    # Payout runs of institution compensation are a separate ledger: no adjustments from these.
    payout = app.run_payout(Period(YEAR, 1), actor="maker", today=after)
    assert all(not r["adjustment_lines"] for r in payout.results["institutions"])
    # Payslips for everyone and the institution's sheet, read back.
    written = app.write_payslips(final.run_id, tmp_path)
    slip = (tmp_path / "C01" / f"{staff[1]}.html").read_text(encoding="utf-8")
    assert person["name"] in slip and final.run_id in slip
    sheet = load_workbook(tmp_path / "C01.xlsx").worksheets[0]
    ids_in_sheet = {row[0] for row in sheet.iter_rows(values_only=True)}
    assert set(people) <= ids_in_sheet
    assert len([p for p in written if p.suffix == ".html"]) == len(people)
    # A later coefficient change leaves every distribution run replaying exactly.
    year = app.log.repository.get(ids.staff_year_id(staff[2], YEAR))
    year.assess(coefficient=D("1.40"), reference="复核", actor="t")
    app.log.save(year)
    for run_id in [*months, final.run_id]:
        replay = app.replay_payout(run_id)
        assert replay["identical"], replay["differences"][:3]


@pytest.mark.slow
def test_on_generated_data_every_pool_is_distributed_to_the_fen(
    prepared_app: PrepareApp, county: Any
) -> None:
    from datetime import date

    app = prepared_app(performance_inputs(county))
    found = app.distribute(Period(YEAR))
    assert len(found.distributions) == 139 and not found.warnings
    for code, d in found.distributions.items():
        totals = d.totals()
        assert totals["base"] == d.base_pool and d.base_pool + d.reward_pool == d.pool, code
        paid = sum(s.performance_pay for s in d.staff.values())
        assert paid == d.pool + d.surplus_redistributed + totals["floor_top_up_outside"], code
        for s in d.staff.values():
            if s.floor is not None and not s.director:
                assert s.performance_pay >= s.floor, (code, s.staff_id)
    run = app.run_distribution(Period(YEAR), actor="maker", today=date(YEAR + 1, 1, 10))
    app.approve_payout(run.run_id, reference="审批", actor="checker")
    assert app.replay_payout(run.run_id)["identical"]


@pytest.mark.slow
@sqlite_only  # writing files; the county's runs from PostgreSQL: the test above, tests/e2e
def test_payslips_for_every_person_and_a_sheet_for_every_institution_of_the_county(
    prepared_app: PrepareApp, county: Any, tmp_path: Path
) -> None:
    from datetime import date

    app = prepared_app(performance_inputs(county))
    run = app.run_distribution(Period(YEAR), actor="maker", today=date(YEAR + 1, 1, 10))
    written = app.write_payslips(run.run_id, tmp_path)
    institutions = run.results["institutions"]
    people = {(i["code"], p["staff_id"]) for i in institutions for p in i["staff"]}
    html = {(p.parent.name, p.stem) for p in written if p.suffix == ".html"}
    assert html == people and len(people) > 500
    assert sorted(p.name for p in written if p.suffix == ".xlsx") == sorted(
        f"{i['code']}.xlsx" for i in institutions
    )


def test_a_database_from_an_older_version_gets_its_inputs_replayed_once(
    prepared_url: Prepare, county: Any
) -> None:
    from sqlalchemy import delete

    from dangliang.application import bootstrap
    from dangliang.projections import equivalents as eq
    from dangliang.projections import facts as inp
    from dangliang.settings import Settings

    db_url = prepared_url(compensation(county))
    app = bootstrap(Settings(db_url))
    try:
        record_pool(app)
        before = app.distribute(Period(YEAR), institution="C01").as_json()
        with app.write_engine.begin() as conn:  # what an older version had recorded
            conn.execute(delete(inp.facts).where(inp.facts.c.kind.in_(inp.STAFF_KINDS)))
            conn.execute(
                delete(eq.projection_versions).where(eq.projection_versions.c.name == "inputs")
            )
        assert not app.distribute(Period(YEAR), institution="C01").distributions
    finally:
        app.close()
    upgraded = bootstrap(Settings(db_url))
    try:
        assert upgraded.distribute(Period(YEAR), institution="C01").as_json() == before
    finally:
        upgraded.close()


def test_a_month_of_the_county_with_village_doctor_floors(
    prepared_app: PrepareApp, county: Any
) -> None:
    """A month's base pay and floor are 1/12 of the annual amounts, rounded to the fen (the
    zhuji floor of 32,000 a year is 2,666.67 a month, not 2,666.666…)."""
    app = prepared_app(performance_inputs(county))
    month = app.distribute(Period(YEAR, 3)).as_json()
    floors = [
        Decimal(s["floor"])
        for i in month["institutions"]
        for s in i["staff"]
        if s.get("floor") is not None
    ]
    assert floors and all(f == f.quantize(Decimal("0.01")) for f in floors)
    assert Decimal(32_000) / 12 != floors[0] == Decimal("2666.67")
