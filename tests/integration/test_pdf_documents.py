"""PDF statements and payslips from recorded runs on a generated county: what a finance clerk
and a member of staff read on the printed page.

On SQLite only: a document is printed from what its run recorded, by the same code on either
backend (the runs themselves, and the equivalents a payslip reads, are tested on PostgreSQL in
test_payouts, test_performance and test_insurance_runs); a PDF takes seconds to lay out."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dangliang.application import Dangliang
from dangliang.domain.errors import NotFound
from dangliang.domain.payout import PayoutRefused
from dangliang.domain.periods import Period
from dangliang.payouts import runs as payouts
from tests.conftest import PrepareApp, sqlite_only
from tests.integration.test_compensation import YEAR, compensation
from tests.integration.test_insurance_runs import CHECKER, TODAY, build_fund
from tests.integration.test_payouts import AFTER_YEAR, run_and_approve
from tests.integration.test_performance import record_pool
from tests.unit.payouts.test_pdf import assert_cjk_fonts_embedded, flat, pages, text_of


def money(value: str) -> str:
    """As the XLSX's `#,##0.00` shows it."""
    return f"{Decimal(value):,.2f}"


@sqlite_only
def test_a_payout_statement_and_a_clerks_part_of_it(
    prepared_app: PrepareApp, county: Any, tmp_path: Path
) -> None:
    app = prepared_app(compensation(county))
    run_id = run_and_approve(app, Period(YEAR, 3))
    run = payouts.run_json(app.payout_run(run_id))
    data = app.statement_pdf(run_id)
    text = text_of(data)
    count = pages(data, tmp_path)
    assert all(inst["name"] in text for inst in run["institutions"])
    totals = [money(run["totals"][k]) for k in ("basic_medical", "total", "payable")]
    assert all(t in text for t in totals), totals
    assert "合计" in text and run_id in text and run["chain_head"] in flat(text)
    assert f"第{count}页/共{count}页" in flat(text)
    assert_cjk_fonts_embedded(data, tmp_path)

    mine = [i for i in run["institutions"] if i["code"] in ("C01", "C02")]
    others = [i for i in run["institutions"] if i["code"] not in ("C01", "C02")]
    clerks = text_of(app.statement_pdf(run_id, institutions=frozenset({"C01", "C02"})))
    assert all(i["name"] in clerks and money(i["payable"]) in clerks for i in mine)
    assert not any(i["name"] in clerks for i in others)
    assert "合计" not in clerks and money(run["totals"]["payable"]) not in clerks
    with pytest.raises(NotFound):
        app.statement_pdf(run_id, institutions=frozenset({"NOWHERE"}))


@sqlite_only
def test_payslips_a_page_per_person_and_one_persons_payslip(
    prepared_app: PrepareApp, county: Any, tmp_path: Path
) -> None:
    app = prepared_app(compensation(county))
    record_pool(app)
    run = app.run_distribution(Period(YEAR), actor="maker", today=AFTER_YEAR)
    # The smallest institution of two or more: a page each (28 pages would only cost time).
    code = min(
        (i for i in run.results["institutions"] if len(i["staff"]) >= 2),
        key=lambda i: len(i["staff"]),
    )["code"]
    people = next(i for i in run.results["institutions"] if i["code"] == code)["staff"]
    data = app.payslips_pdf(run.run_id, code)
    assert pages(data, tmp_path) == len(people)
    for page, person in zip(text_of(data).split("\f"), people, strict=False):
        assert person["name"] in page and money(person["total"]) in page
    assert_cjk_fonts_embedded(data, tmp_path)

    person = people[-1]
    one = app.payslips_pdf(run.run_id, code, person["staff_id"])
    assert pages(one, tmp_path) == 1
    text = flat(text_of(one))
    assert person["name"] in text and f"合计{money(person['total'])}" in text
    assert run.run_id in text
    with pytest.raises(NotFound):
        app.payslips_pdf(run.run_id, "C01", "NOBODY")
    with pytest.raises(PayoutRefused):  # a distribution run has payslips, not a statement
        app.statement_pdf(run.run_id)
    payout = app.run_payout(Period(YEAR, 1), actor="maker", today=AFTER_YEAR)
    with pytest.raises(PayoutRefused):  # and a payout run no payslips
        app.payslips_pdf(payout.run_id, "C01")


@sqlite_only
def test_a_fund_statement_lists_its_communities(prepared_app: PrepareApp, tmp_path: Path) -> None:
    app: Dangliang = prepared_app("insurance-deqing", build_fund)
    run = app.run_insurance(Period(2024, 1), actor="maker", today=TODAY)
    app.approve_payout(run.run_id, reference="审批1", actor=CHECKER)
    doc = payouts.run_json(app.payout_run(run.run_id))
    data = app.statement_pdf(run.run_id)
    text = text_of(data)
    assert "武康健保集团" in text and "新市健保集团" in text
    assert all(money(c["payable"]) in text for c in doc["communities"])
    assert money(doc["totals"]["payable"]) in text and "合计" in text
    assert "德清县" in text  # the built-in bundle's county
    assert_cjk_fonts_embedded(data, tmp_path)
    # A clerk of C3 sees the community C3 belongs to (新市), nothing of the other or the fund.
    clerks = text_of(app.statement_pdf(run.run_id, institutions=frozenset({"C3"})))
    assert "新市健保集团" in clerks and "武康健保集团" not in clerks and "合计" not in clerks
