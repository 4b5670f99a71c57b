"""Fund runs end to end on both backends: advances, approval by a second person, the year-end
settlement against the advances actually paid, a claim corrected after the year was paid
(paid as an adjustment in the next run, never by editing the paid run), replay to the fen,
the hash chain, and explain down to the claims."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dangliang.application import Dangliang, insurance_fund
from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.community import CommunityYear, FundYear, MedicalCommunity
from dangliang.domain.institution import Institution
from dangliang.domain.payout import PayoutRefused
from dangliang.domain.periods import Period
from dangliang.payouts.insurance_runs import fen
from tests.conftest import Prepare
from tests.integration.test_payouts import two_runs_at_once

TODAY = date(2026, 3, 1)
ACTOR, CHECKER = "maker", "checker"


def build_fund(app: Dangliang, rule: str = "deqing_insurance") -> None:
    """Two communities, three centres (one with a clinic), 40 people, a year of claims."""
    for code, kind, parent in (
        ("C1", "township_health_centre", None),
        ("C2", "township_health_centre", None),
        ("C3", "community_health_centre", None),
        ("C1V1", "village_clinic", "C1"),
    ):
        app.log.save(
            Institution.register(
                code=code,
                name=f"机构{code}",
                kind=kind,
                parent_code=parent,
                remote=False,
                actor=ACTOR,
            )
        )
    app.log.save(
        MedicalCommunity.register(
            code="WK",
            name="武康健保集团",
            lead_hospital_code="H1",
            lead_hospital_name="县人民医院",
            members=["C1", "C2"],
            actor=ACTOR,
        ),
        MedicalCommunity.register(
            code="XS",
            name="新市健保集团",
            lead_hospital_code="H2",
            lead_hospital_name="县中医院",
            members=["C3"],
            actor=ACTOR,
        ),
    )
    for year in (2024, 2025):
        fund = FundYear.open(year=year, actor=ACTOR)
        fund.report(
            revenue_fen=40_000_000,
            prior_spending_fen=30_000_000 if year == 2024 else None,
            reference="医保〔2024〕1号",
            actor=ACTOR,
        )
        app.log.save(fund)
        for code, score in (("WK", Decimal(90)), ("XS", Decimal(60))):
            scored = CommunityYear.open(code=code, year=year, actor=ACTOR)
            scored.score_assessment(score=score, reference="考核〔2025〕2号", actor=ACTOR)
            app.log.save(scored)
    people = []
    for n in range(40):
        people.append(
            Enrolment.record(
                insured_ref=f"P{n:03d}",
                from_month="2024-01",
                insurance_type="employee" if n % 3 else "resident",
                birth_date=date(1950 + n, 5, 1),
                home="武康" if n < 25 else "新市",
                community_code="WK" if n < 25 else "XS",
                to_month=None,
                actor=ACTOR,
            )
        )
    app.log.save(*people)
    claims = [
        Claim.settle(
            claim_id=f"K{year}-{n:04d}",
            insured_ref=f"P{n % 40:03d}",
            community_code="WK" if n % 40 < 25 else "XS",
            institution_code="C1" if n % 7 else "OUT",
            out_of_area=n % 7 == 0,
            settled_on=date(year, n % 12 + 1, 10),
            fund_fen=50_000 + 137 * n,
            actor=ACTOR,
        )
        for year in (2024, 2025)
        for n in range(240)
    ]
    app.log.save(*claims)
    app.adopt_policy(rule, reference="领导小组会议纪要〔2022〕1号", actor=ACTOR, scheme="insurance")


@pytest.fixture
def fund_app(prepared_app) -> Dangliang:  # type: ignore[no-untyped-def]
    return prepared_app("insurance-deqing", build_fund)


def test_the_fund_year_runs_end_to_end(fund_app: Dangliang) -> None:
    app = fund_app
    months = []
    for m in range(1, 13):
        run = app.run_insurance(Period(2024, m), actor=ACTOR, today=TODAY)
        with pytest.raises(PayoutRefused):  # maker-checker
            app.approve_payout(run.run_id, reference="审批1", actor=ACTOR)
        app.approve_payout(run.run_id, reference="审批1", actor=CHECKER)
        months.append(app.payout_run(run.run_id))
    year = app.run_insurance(Period(2024), actor=ACTOR, today=TODAY)
    rows = {r["code"]: r for r in year.results["communities"]}
    for code, row in rows.items():
        advances = sum(
            fen(r["figures"]["advance"])
            for run in months
            for r in run.results["communities"]
            if r["code"] == code
        )
        assert fen(row["advances_paid"]) == advances > 0
        assert fen(row["settlement"]) == fen(row["figures"]["final"]) - advances
        assert fen(row["payable"]) == fen(row["settlement"])
    # The budget is what the months' budgets add up to, and spending is every claim.
    assert sum(fen(r["figures"]["spending"]) for r in rows.values()) == sum(
        50_000 + 137 * n for n in range(240)
    )
    app.approve_payout(year.run_id, reference="清算审批", actor=CHECKER)
    app.mark_payout_paid(year.run_id, reference="拨付凭证 88", actor=ACTOR)

    # A claim of 2024 corrected after the year was paid: the paid run is untouched, replays
    # to the fen, and the difference is paid in the next run with its cause.
    claim: Claim = app.log.repository.get(Claim.create_id(claim_id="K2024-0001"))
    community, institution, out_of_area, settled_on, amount = claim.values
    claim.correct(
        community_code=community,
        institution_code=institution,
        out_of_area=out_of_area,
        settled_on=settled_on,
        fund_fen=amount + 1_000_000,
        reason="稽核更正",
        actor=ACTOR,
    )
    app.log.save(claim)
    replay = app.replay_payout(year.run_id)
    assert replay["identical"], replay["differences"]
    january = app.run_insurance(Period(2025, 1), actor=ACTOR, today=TODAY)
    row = next(r for r in january.results["communities"] if r["code"] == community)
    (line,) = row["adjustment_lines"]
    again = app.compute_insurance(Period(2024)).result.communities[community].figures["final"]
    paid = fen(rows[community]["figures"]["final"])
    assert fen(line["amount"]) == again - paid != 0
    assert line["period"] == "2024" and line["settled_by"] == year.run_id
    assert any("K2024-0001" in cause and "稽核更正" in cause for cause in line["causes"])
    assert fen(row["payable"]) == fen(row["figures"]["advance"]) + fen(line["amount"])
    other = next(r for r in january.results["communities"] if r["code"] != community)
    assert other["adjustment_lines"] == []
    assert app.replay_payout(january.run_id)["identical"]
    assert app.verify_log()["ok"]


def test_explain_goes_down_to_the_claims_and_clauses(fund_app: Dangliang) -> None:
    found = fund_app.explain_insurance("WK", Period(2024), records=5)
    assert found["figures"]["final"]
    assert any(p["reference"] for s in found["steps"] for p in s["parameters"])
    assert len(found["claims"]) == 5 and all(c["community"] == "WK" for c in found["claims"])
    assert found["enrolments"]
    assert sum(found["enrolled_by_month"]["2024-01"].values()) == 25


def test_what_if_writes_nothing(fund_app: Dangliang) -> None:
    head = fund_app.catch_up()
    found = fund_app.insurance_what_if(Period(2024), ["deqing.growth_rate=0.10"])
    assert found["nothing_written"] and fund_app.catch_up() == head
    budget = found["communities"][0]["figures"]["budget"]
    assert Decimal(budget["scenario"]) > Decimal(budget["baseline"])


def test_a_quarter_is_refused_when_advances_are_monthly(fund_app: Dangliang) -> None:
    with pytest.raises(PayoutRefused, match="monthly"):
        fund_app.run_insurance(Period(2024, quarter=1), actor=ACTOR, today=TODAY)
    with pytest.raises(PayoutRefused, match="not ended"):
        fund_app.run_insurance(Period(2026, 3), actor=ACTOR, today=TODAY)


def test_an_enrolment_ended_after_the_year_was_paid_is_adjusted(fund_app: Dangliang) -> None:
    app = fund_app
    year = app.run_insurance(Period(2024), actor=ACTOR, today=TODAY)
    app.approve_payout(year.run_id, reference="清算审批", actor=CHECKER)
    paid = {r["code"]: fen(r["figures"]["final"]) for r in year.results["communities"]}
    person: Enrolment = app.log.repository.get(
        Enrolment.create_id(insured_ref="P030", from_month="2024-01")
    )
    insurance_type, birth_date, home, community, _ = person.values
    person.correct(
        insurance_type=insurance_type,
        birth_date=birth_date,
        home=home,
        community_code=community,
        to_month="2024-06",
        reason="7月起转外地参保",
        actor=ACTOR,
    )
    app.log.save(person)
    assert app.replay_payout(year.run_id)["identical"]
    february = app.run_insurance(Period(2025, 2), actor=ACTOR, today=TODAY)
    row = next(r for r in february.results["communities"] if r["code"] == community)
    (line,) = row["adjustment_lines"]
    now = app.compute_insurance(Period(2024)).result.communities[community].figures["final"]
    assert fen(line["amount"]) == now - paid[community] < 0  # six months fewer: less budget
    assert any("P030" in cause and "7月起转外地参保" in cause for cause in line["causes"])


def test_a_later_score_is_paid_as_an_adjustment_naming_it(fund_app: Dangliang) -> None:
    app = fund_app
    year = app.run_insurance(Period(2024), actor=ACTOR, today=TODAY)
    app.approve_payout(year.run_id, reference="清算审批", actor=CHECKER)
    rescored: CommunityYear = app.log.repository.get(CommunityYear.create_id("WK", 2024))
    rescored.score_assessment(score=Decimal(100), reference="复核〔2025〕9号", actor=ACTOR)
    app.log.save(rescored)
    march = app.run_insurance(Period(2025, 3), actor=ACTOR, today=TODAY)
    lines = {r["code"]: r["adjustment_lines"] for r in march.results["communities"]}
    (line,) = lines["WK"]
    assert lines["XS"] == [] and fen(line["amount"]) > 0  # 90 → 100 points: more kept
    assert any("community_score" in c and "复核〔2025〕9号" in c for c in line["causes"])


def test_two_months_run_at_once_leave_one_fund_draft(
    prepared_url: Prepare, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for payout runs (tests/integration/test_payouts.py): the fund's check for other
    drafts and the draft's append are held one at a time across processes."""
    url = prepared_url("insurance-deqing", build_fund)
    outcomes, drafts = two_runs_at_once(
        url,
        insurance_fund,
        lambda app, month: app.run_insurance(Period(2024, month), actor=ACTOR, today=TODAY),
        monkeypatch,
    )
    assert outcomes[0] == "draft"
    assert outcomes[1].startswith("refused: approve or reject the draft run(s) ins-2024-0")
    assert len(drafts) == 1
