"""Payout runs on a generated county, on SQLite and PostgreSQL: a year of monthly runs and the
settlement, maker-checker, exact replay after later corrections and price changes, and the
adjustments (with causes) that retroactive changes bring into the next run.

The county is four of the generated county's twelve centres with their village clinics
(`four_centres`, 46 of its 139 institutions): what is checked here is how runs behave, and each
run computes every institution. The whole county's runs: tests/integration/test_performance.py,
tests/e2e (the demo) and the golden corpora."""

from __future__ import annotations

import contextlib
import csv
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from freezegun import freeze_time

from dangliang.application import Dangliang, bootstrap, pay_runs
from dangliang.domain import ids
from dangliang.domain.errors import DomainError
from dangliang.domain.payout import PayoutRefused
from dangliang.domain.periods import Period
from dangliang.domain.service import ServiceRecord
from dangliang.settings import Settings
from tests.conftest import Prepare, PrepareApp
from tests.integration.test_compensation import YEAR, compensation, record_inputs
from tests.integration.test_equivalents import allow_frozen_time

D = Decimal
AFTER_YEAR = date(YEAR + 1, 1, 10)


def run_and_approve(app: Dangliang, period: Period, today: date = AFTER_YEAR) -> str:
    run = app.run_payout(period, actor="maker", today=today)
    app.approve_payout(run.run_id, reference=f"审批 {period.label}", actor="checker")
    return run.run_id


def rows(app: Dangliang, run_id: str) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in app.payout_run(run_id).results["institutions"]}


def a_record_of(county: Any, month: str, institution: str) -> dict[str, str]:
    with county.files["services"].open(encoding="utf-8") as f:
        return next(
            r
            for r in csv.DictReader(f)
            if r["service_date"].startswith(month)
            and r["institution_code"] == institution
            and r["item_code"].startswith("BM")
        )


def test_maker_checker_states_and_period_ends(prepared_app: PrepareApp, four_centres: Any) -> None:
    app = prepared_app(compensation(four_centres))
    allow_frozen_time(app)
    with (
        freeze_time("2024-03-31 23:00:00"),
        pytest.raises(PayoutRefused, match="has not ended"),
    ):
        app.run_payout(Period(YEAR, 3), actor="maker", today=date.today())
    with freeze_time("2024-04-01 08:00:00"):
        first = app.run_payout(Period(YEAR, 3), actor="maker", today=date.today())
    assert first.state == "draft" and first.run_id == "2024-03#1"
    with pytest.raises(PayoutRefused, match="maker-checker"):
        app.approve_payout(first.run_id, reference="x", actor="maker")
    second = app.run_payout(Period(YEAR, 3), actor="maker", today=AFTER_YEAR)
    assert second.supersedes == first.run_id
    assert app.payout_run(first.run_id).state == "superseded"
    with pytest.raises(PayoutRefused, match="superseded"):
        app.approve_payout(first.run_id, reference="x", actor="checker")
    with pytest.raises(PayoutRefused, match="paid"):
        app.mark_payout_paid(second.run_id, reference="bank-1", actor="cashier")
    app.approve_payout(second.run_id, reference="审批 2024-03", actor="checker")
    with pytest.raises(PayoutRefused, match="approved run 2024-03#2"):
        app.run_payout(Period(YEAR, 3), actor="maker", today=AFTER_YEAR)
    paid = app.mark_payout_paid(second.run_id, reference="bank-1", actor="cashier")
    assert paid.state == "paid"
    with (
        freeze_time("2024-12-31 12:00:00"),
        pytest.raises(PayoutRefused, match="has not ended"),
    ):
        app.run_payout(Period(YEAR), actor="maker", today=date.today())
    rejected = app.run_payout(Period(YEAR, 4), actor="maker", today=AFTER_YEAR)
    with pytest.raises(PayoutRefused, match="2024-04#1 first"):
        app.run_payout(Period(YEAR, 5), actor="maker", today=AFTER_YEAR)
    with pytest.raises(DomainError, match="reason"):
        app.reject_payout(rejected.run_id, reason=" ", actor="checker")
    assert app.reject_payout(rejected.run_id, reason="收入数据待核", actor="checker").state == (
        "rejected"
    )
    assert app.run_payout(Period(YEAR, 4), actor="maker", today=AFTER_YEAR).run_id == "2024-04#2"
    # A run looked up on its own (its period's facts only) is the run as the listing has it.
    listing = app.payout_runs()
    assert {run_id: app.payout_run(run_id) for run_id in listing} == listing
    assert {r.state for r in listing.values()} == {"superseded", "paid", "rejected", "draft"}


@pytest.mark.slow
def test_a_year_of_runs_replays_exactly_and_pays_retroactive_changes_later(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    app = prepared_app(compensation(four_centres))
    record_inputs(app)
    months = {m: run_and_approve(app, Period(YEAR, m)) for m in (1, 2, 3)}
    feb = rows(app, months[2])
    # A late correction of a February record, then a retroactive price change from March.
    record = a_record_of(four_centres, f"{YEAR}-02", "C01")
    original = app.log.repository.get(ids.service_record_id("C01", record["source_id"]))
    assert isinstance(original, ServiceRecord)
    original.correct(
        staff_id=original.staff_id,
        item_code=original.item_code,
        quantity=original.quantity + D(40),
        service_date=original.service_date,
        compliant=original.compliant,
        reason="补录漏计数量",
        actor="clerk",
    )
    app.log.save(original)
    app.change_parameter(
        "unit_price.basic_medical",
        "13.00",
        start=date(YEAR, 3, 1),
        reason="价格调整（追溯）",
        approver="县卫健局、县财政局",
        actor="officer",
    )
    april = run_and_approve(app, Period(YEAR, 4))
    c01 = rows(app, april)["C01"]
    lines = {line["period"]: line for line in c01["adjustment_lines"]}
    assert set(lines) == {"2024-02", "2024-03"}
    # February: the new advance minus the advance paid, computed independently.
    now_feb = app.compute(Period(YEAR, 2)).result.institutions["C01"].advances
    assert D(lines["2024-02"]["amount"]) == now_feb - D(feb["C01"]["advances"])
    assert D(lines["2024-02"]["amount"]) > 0
    assert any("corrected" in c for c in lines["2024-02"]["causes"])
    assert any("unit_price.basic_medical" in c for c in lines["2024-03"]["causes"])
    assert not any("unit_price" in c for c in lines["2024-02"]["causes"])  # from March only
    assert D(c01["payable"]) == D(c01["advances"]) + sum(
        D(line["amount"]) for line in c01["adjustment_lines"]
    )
    # Paid once: the next month carries no adjustment for them any more.
    may = run_and_approve(app, Period(YEAR, 5))
    assert all(not r["adjustment_lines"] for r in rows(app, may).values())
    for m in range(6, 13):
        months[m] = run_and_approve(app, Period(YEAR, m))
    settlement = run_and_approve(app, Period(YEAR))
    settled = rows(app, settlement)
    annual = app.compute(Period(YEAR)).result.institutions["C01"]
    paid = sum(D(rows(app, r)["C01"]["advances"]) for r in [*months.values(), april, may])
    paid += sum(D(line["amount"]) for line in c01["adjustment_lines"])
    assert D(settled["C01"]["advances"]) == paid
    assert D(settled["C01"]["total"]) == annual.total
    assert D(settled["C01"]["settlement"]) == annual.total - paid
    assert not settled["C01"]["adjustment_lines"]  # the settlement covers its own months
    # After the settlement: a void, an equivalent-value change and a price change, all
    # retroactive into the settled year.
    june = a_record_of(four_centres, f"{YEAR}-06", "C01")
    voided = app.log.repository.get(ids.service_record_id("C01", june["source_id"]))
    voided.void(reason="抽查不合规", actor="auditor")
    item = app.log.repository.get(ids.catalogue_item_id("BM002"))
    item.set_value(
        value=D("1.8"), effective_from=date(YEAR, 5, 1), reference="追溯调整", actor="hb"
    )
    app.log.save(voided, item)
    app.change_parameter(
        "unit_price.basic_public_health",
        "11.00",
        start=date(YEAR, 12, 1),
        reason="价格调整（追溯）",
        approver="县卫健局、县财政局",
        actor="officer",
    )
    # Every old run still replays to the fen after all of that.
    for run_id in [*months.values(), april, may, settlement]:
        replay = app.replay_payout(run_id)
        assert replay["identical"], (run_id, replay["differences"][:5])
    # The settled year's difference is paid as a 2024 adjustment in the next year's run.
    next_year = app.run_payout(Period(YEAR + 1, 1), actor="maker", today=date(YEAR + 1, 2, 1))
    line = rows(app, next_year.run_id)["C01"]["adjustment_lines"]
    assert [x["period"] for x in line] == ["2024"]
    now_total = app.compute(Period(YEAR)).result.institutions["C01"].total
    assert D(line[0]["amount"]) == now_total - D(settled["C01"]["total"])
    why = "\n".join(line[0]["causes"])
    assert "voided or moved" in why and "BM002 = 1.8000 from 2024-05-01" in why
    assert "unit_price.basic_public_health" in why
    assert app.replay_payout(settlement)["identical"]


def test_diff_names_what_changed_between_two_runs_and_why(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    app = prepared_app(compensation(four_centres))
    first = app.run_payout(Period(YEAR, 2), actor="maker", today=AFTER_YEAR)
    record = a_record_of(four_centres, f"{YEAR}-02", "C02")
    voided = app.log.repository.get(ids.service_record_id("C02", record["source_id"]))
    voided.void(reason="重复录入", actor="clerk")
    app.log.save(voided)
    second = app.run_payout(Period(YEAR, 2), actor="maker", today=AFTER_YEAR)
    found = app.diff_payouts(first.run_id, second.run_id)
    changed = {r["code"]: r for r in found["institutions"]}
    assert set(changed) == {"C02"}
    assert any("voided" in c for c in changed["C02"]["causes"])
    assert any("basic_medical" in c for c in changed["C02"]["changes"])


def test_a_replay_names_every_difference(prepared_app: PrepareApp, four_centres: Any) -> None:
    app = prepared_app(compensation(four_centres))
    run = app.run_payout(Period(YEAR, 3), actor="maker", today=AFTER_YEAR)
    replay = app.replay_payout(run.run_id)
    assert replay["identical"] and replay["differences"] == []
    from dangliang.payouts import runs as payouts

    tampered = dict(run.results)
    tampered["totals"] = {**run.results["totals"], "payable": "0.00"}
    assert payouts.compare(tampered, run.results) == [
        f"totals.payable: recorded 0.00 != recomputed {run.results['totals']['payable']}"
    ]


def test_a_log_edited_and_rechained_is_caught_by_the_runs_chain_heads(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    from sqlalchemy import text

    app = prepared_app(compensation(four_centres))
    run = app.run_payout(Period(YEAR, 3), actor="maker", today=AFTER_YEAR)
    assert app.verify_log()["ok"]
    target = run.position // 2
    sqlite = app.database.backend == "sqlite"
    column = "rowid" if sqlite else "notification_id"
    append = "CAST(state || ' ' AS BLOB)" if sqlite else "state || '\\x20'::bytea"
    with app.write_engine.begin() as conn:
        conn.execute(
            text(f"UPDATE {app.log.events_table} SET state = {append} WHERE {column} = {target}")
        )
    found = app.verify_log()
    assert not found["ok"] and found["first_problem"]["notification_id"] == target
    # A tamperer who also recomputes the whole chain over the edited log:
    from dangliang.ledger import chain

    with app.write_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_chain"))
        tables = chain.tables_of(conn, app.log.events_table)
        chain.extend(tables, (0, chain.GENESIS_HEX), chain.last_event_id(tables))
    found = app.verify_log()
    assert not found["ok"]
    assert any(f"run {run.run_id} recorded chain head" in line for line in found["lines"])


def test_two_months_run_at_once_leave_one_draft_and_refuse_the_other(
    prepared_url: Prepare, four_centres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clerks start March's and April's runs at the same moment, each in its own process
    (here: its own application on its own thread). Each run checks that no other draft is
    open before it records its own; both checks would pass if they ran side by side, so the
    check and the append are held one at a time: the second sees the first's draft and is
    refused."""
    url = prepared_url(compensation(four_centres))
    outcomes, drafts = two_runs_at_once(
        url,
        pay_runs,
        lambda app, month: app.run_payout(Period(YEAR, month), actor="maker", today=AFTER_YEAR),
        monkeypatch,
    )
    assert outcomes[0] == "draft"
    assert outcomes[1].startswith("refused: approve or reject the draft run(s) 2024-0")
    assert len(drafts) == 1


def two_runs_at_once(
    url: str,
    module: Any,
    run: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[str], list[str]]:
    """March's and April's runs (`run(app, month)`) started at once by two applications on
    two threads; a barrier after `module.refuse_other_drafts` holds the first run there
    until the second has had every chance to reach it too. The outcomes, sorted, and the
    run ids left in draft."""
    apps = [bootstrap(Settings(url)) for _ in range(2)]
    both_checked = threading.Barrier(2)
    check = module.refuse_other_drafts

    def check_then_wait(runs: Any, label: str) -> None:
        check(runs, label)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=2)

    monkeypatch.setattr(module, "refuse_other_drafts", check_then_wait)
    outcomes: list[str] = []

    def start(app: Dangliang, month: int) -> None:
        try:
            outcomes.append(run(app, month).state)
        except PayoutRefused as refused:
            outcomes.append(f"refused: {refused.message_en}")

    threads = [
        threading.Thread(target=start, args=(a, m)) for a, m in zip(apps, (3, 4), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    drafts = [r.run_id for r in apps[0].payout_runs().values() if r.state == "draft"]
    for app in apps:
        app.close()
    return sorted(outcomes), drafts
