"""The runs pages (支付批次): starting a run from the form, maker-checker on the page and
behind it, approve / reject / paid, the documents, replay and diff, and what a clerk sees.

The session's county is shared with the other page tests: these tests use periods of their
own (compensation 2024-07 … 2024-09, the distribution and the fund's 2024-07), never assume
the list is empty, and close the drafts they open so the next run of a ledger is allowed.
"""

from __future__ import annotations

import io
import re
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dangliang.domain.periods import Period
from tests.web.conftest import PEOPLE, Site

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CENT = Decimal("0.01")


# ---- reading the pages --------------------------------------------------------------------


def attribute(html: str, element_id: str, name: str) -> str | None:
    """`name="…"` of the element with `id="element_id"`."""
    tag = re.search(rf'<[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    if tag is None:
        return None
    found = re.search(rf'\b{name}="([^"]*)"', tag.group(0))
    return found.group(1) if found else None


def list_rows(html: str) -> dict[str, dict[str, str]]:
    """The runs list's rows: run id → its data attributes."""
    out = {}
    for tag in re.findall(r"<tr data-run-id=[^>]*>", html):
        attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag))
        out[attrs["run-id"]] = attrs
    return out


def line_codes(html: str) -> list[str]:
    """The institutions (communities) in a run page's table of lines."""
    table = html.split('id="run-lines"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-code="([^"]+)"', table)


def slug(run_id: str) -> str:
    return run_id.replace("#", "~")


def start(site: Site, ledger: str, period: str) -> str:
    """Start a run through the admin's form; the new run's id."""
    response = site.post("admin", "/runs", data={"ledger": ledger, "period": period})
    assert response.status_code == 303, response.text[:2000]
    location = response.headers["location"]
    found = re.fullmatch(r"/runs/([^?]+)\?done=computed", location)
    assert found, location
    return found.group(1).replace("~", "#")


def close_drafts(site: Site, *periods: str) -> None:
    """Send back any draft left open in these periods (so the ledger's next run is allowed)."""
    for run in site.service.payout_runs().values():
        if run.state == "draft" and run.period in periods:
            site.service.reject_payout(run.run_id, reason="测试结束 test done", actor="tester")


def clerk_scope(site: Site, who: str = "clerk") -> frozenset[str]:
    principal = site.service.users.principal(PEOPLE[who])
    assert principal is not None and principal.scope is not None
    return principal.scope


def closed_july(site: Site) -> str:
    """2024-07's approved (or paid) run: the main flow's, or one made here if it has not run."""
    runs = [r for r in site.service.payout_runs().values() if r.period == "2024-07"]
    closed = [r.run_id for r in runs if r.state in ("approved", "paid")]
    if closed:
        return closed[0]
    close_drafts(site, "2024-07")
    run = site.service.run_payout(Period.of("2024-07"), actor="tester", today=date.today())
    site.service.approve_payout(run.run_id, reference="测试", actor=PEOPLE["auditor"])
    return run.run_id


# ---- the main flow ------------------------------------------------------------------------


def test_start_approve_and_pay_with_maker_checker(site: Site) -> None:
    try:
        run_id = start(site, "compensation", "2024-07")
        assert run_id.startswith("2024-07#")
        recorded = site.service.payout_run(run_id)
        total = recorded.results["totals"]["payable"]
        assert recorded.state == "draft" and recorded.computed_by == PEOPLE["admin"]

        # the draft in the list, with its total
        rows = list_rows(site.get("admin", "/runs").text)
        assert rows[run_id]["state"] == "draft"
        assert rows[run_id]["kind"] == "monthly_advance"
        assert Decimal(rows[run_id]["amount"]) == Decimal(total)

        # the maker's page: the message, the total, no approval offered
        page = site.get("admin", f"/runs/{slug(run_id)}", done="computed")
        assert page.status_code == 200
        html = page.text
        assert 'id="done-message"' in html
        assert attribute(html, "run-state", "data-state") == "draft"
        assert Decimal(attribute(html, "run-total", "data-value") or "x") == Decimal(total)
        assert 'id="approve-button"' not in html and 'id="approve-form"' not in html
        assert 'id="maker-notice"' in html
        assert attribute(html, "run-results-digest", "id") and recorded.results_digest in html
        assert recorded.chain_head in html
        assert f'data-value="{recorded.position}"' in html
        # every line, with amounts linking to the explanation
        assert set(line_codes(html)) == {i["code"] for i in recorded.results["institutions"]}
        assert "/explain/institution/C01?period=2024-07&amp;component=basic_medical" in html

        # the same run through `%23`
        assert site.get("admin", "/runs/" + run_id.replace("#", "%23")).status_code == 200

        # a forged approval by the maker is refused with the domain's reason
        forged = site.post("admin", f"/runs/{slug(run_id)}/approve", data={"reference": "x"})
        assert forged.status_code == 409
        assert "审核人不能是计算人" in forged.text
        assert site.service.payout_run(run_id).state == "draft"

        # a second open draft of the ledger is refused, naming the open one
        second = site.post("admin", "/runs", data={"ledger": "compensation", "period": "2024-08"})
        assert second.status_code == 409 and run_id in second.text

        # the auditor is offered the approval and approves
        html = site.get("auditor", f"/runs/{slug(run_id)}").text
        assert 'id="approve-button"' in html and 'id="maker-notice"' not in html
        assert 'id="paid-button"' not in html  # marking paid is the admin's
        done = site.post("auditor", f"/runs/{slug(run_id)}/approve", data={"reference": "财审1号"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/runs/{slug(run_id)}?done=approved"
        html = site.get("auditor", f"/runs/{slug(run_id)}", done="approved").text
        assert attribute(html, "run-state", "data-state") == "approved"
        assert 'id="done-message"' in html and "财审1号" in html
        assert 'id="approve-button"' not in html
        assert site.service.payout_run(run_id).state == "approved"

        # marked paid by the admin (not by the auditor)
        refused = site.post("auditor", f"/runs/{slug(run_id)}/paid", data={"reference": "P-1"})
        assert refused.status_code == 403
        html = site.get("admin", f"/runs/{slug(run_id)}").text
        assert 'id="paid-button"' in html
        paid = site.post("admin", f"/runs/{slug(run_id)}/paid", data={"reference": "付2024-07"})
        assert paid.status_code == 303 and paid.headers["location"].endswith("?done=paid")
        html = site.get("admin", f"/runs/{slug(run_id)}").text
        assert attribute(html, "run-state", "data-state") == "paid"
        assert "付2024-07" in html and 'id="paid-button"' not in html
        assert list_rows(site.get("auditor", "/runs", state="paid").text)[run_id]["state"] == "paid"
    finally:
        close_drafts(site, "2024-07")


def test_reject_with_a_reason(site: Site) -> None:
    try:
        run_id = start(site, "compensation", "2024-08")
        path = f"/runs/{slug(run_id)}/reject"
        assert site.post("auditor", path, data={}).status_code == 422  # a reason is required
        done = site.post("auditor", path, data={"reason": "核对中发现口径错误"})
        assert done.status_code == 303 and done.headers["location"].endswith("?done=rejected")
        html = site.get("admin", f"/runs/{slug(run_id)}").text
        assert attribute(html, "run-state", "data-state") == "rejected"
        assert "核对中发现口径错误" in html
        assert 'id="reject-button"' not in html and 'id="approve-button"' not in html
        # a rejected run cannot be approved any more: the domain's message as a page
        again = site.post("auditor", f"/runs/{slug(run_id)}/approve", data={"reference": "x"})
        assert again.status_code == 409 and "已退回" in again.text
    finally:
        close_drafts(site, "2024-08")


def test_replay_and_statement(site: Site) -> None:
    run_id = closed_july(site)
    html = site.get("auditor", f"/runs/{slug(run_id)}/replay").text
    assert attribute(html, "replay-result", "data-identical") == "true"
    assert attribute(html, "replay-digest", "data-ok") == "true"
    assert attribute(html, "replay-rule-set", "data-rule-set") == "compensation v1"
    shown = site.get("auditor", f"/runs/{slug(run_id)}").text
    assert '<td id="run-rule-set">compensation v1</td>' in shown
    assert site.get("clerk", f"/runs/{slug(run_id)}/replay").status_code == 403

    response = site.get("auditor", f"/runs/{slug(run_id)}/statement.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    head = next(r for r in rows if "本次应付" in r)
    totals = next(r for r in rows if r and r[0] == "合计")
    expected = site.service.payout_run(run_id).results["totals"]
    assert Decimal(str(totals[head.index("本次应付")])).quantize(CENT) == Decimal(
        expected["payable"]
    )
    assert Decimal(str(totals[head.index("基本医疗")])).quantize(CENT) == Decimal(
        expected["basic_medical"]
    )
    # county-wide: not for a clerk (theirs is the PDF)
    assert site.get("clerk", f"/runs/{slug(run_id)}/statement.xlsx").status_code == 403


def test_a_clerk_sees_only_their_own_amounts(site: Site) -> None:
    run_id = closed_july(site)
    recorded = site.service.payout_run(run_id)
    scope = clerk_scope(site)
    own = [i for i in recorded.results["institutions"] if i["code"] in scope]
    assert own and len(own) < len(recorded.results["institutions"])
    expected = sum((Decimal(i["payable"]) for i in own), Decimal(0))

    rows = list_rows(site.get("clerk", "/runs").text)
    assert Decimal(rows[run_id]["amount"]) == expected
    assert 'id="start-run-form"' not in site.get("clerk", "/runs").text

    html = site.get("clerk", f"/runs/{slug(run_id)}").text
    assert set(line_codes(html)) == {i["code"] for i in own}
    assert 'id="run-totals"' not in html
    assert Decimal(attribute(html, "run-total", "data-value") or "x") == expected
    assert recorded.results["totals"]["payable"] not in html
    for absent in ("approve-button", "reject-button", "paid-button", "replay-link"):
        assert f'id="{absent}"' not in html
    # nothing to do for a clerk
    assert (
        site.post("clerk", f"/runs/{slug(run_id)}/approve", data={"reference": "x"}).status_code
        == 403
    )
    assert (
        site.post(
            "clerk", "/runs", data={"ledger": "compensation", "period": "2024-09"}
        ).status_code
        == 403
    )
    assert site.get("clerk", "/runs/diff").status_code == 403


def test_distribution_run_payslips(site: Site) -> None:
    run_id = start(site, "distribution", "2024-07")
    try:
        assert run_id.startswith("perf-2024-07#")
        recorded = site.service.payout_run(run_id)
        html = site.get("admin", f"/runs/{slug(run_id)}").text
        assert attribute(html, "run-title", "data-kind") == "performance_pay"
        assert Decimal(attribute(html, "run-total", "data-value") or "x") == Decimal(
            recorded.results["totals"]["total"]
        )
        assert f"/runs/{slug(run_id)}/payslips/C02.pdf" in html
        assert 'id="statement-xlsx"' not in html and 'id="statement-pdf"' not in html
        assert site.get("auditor", f"/runs/{slug(run_id)}/statement.xlsx").status_code == 409

        scope = clerk_scope(site)
        clerk_html = site.get("clerk", f"/runs/{slug(run_id)}").text
        codes = set(line_codes(clerk_html))
        assert codes and codes <= scope
        assert "payslips/C02.pdf" not in clerk_html
        # another institution's payslips: 403, whichever the run
        assert site.get("clerk", f"/runs/{slug(run_id)}/payslips/C02.pdf").status_code == 403
        assert site.get("clerk2", f"/runs/{slug(run_id)}/payslips/C01.pdf").status_code == 403
    finally:
        close_drafts(site, "perf-2024-07")


def test_fund_run(site: Site) -> None:
    try:
        run_id = start(site, "insurance", "2024-07")
        assert run_id.startswith("ins-2024-07#")
        recorded = site.service.payout_run(run_id)
        html = site.get("admin", f"/runs/{slug(run_id)}").text
        assert attribute(html, "run-title", "data-kind") == "insurance_advance"
        assert set(line_codes(html)) == {"YGT01", "YGT02"}
        assert Decimal(attribute(html, "run-total", "data-value") or "x") == Decimal(
            recorded.results["totals"]["payable"]
        )
        # a clerk of C01 sees their medical community only, with its amount
        clerk_html = site.get("clerk", f"/runs/{slug(run_id)}").text
        assert line_codes(clerk_html) == ["YGT01"]
        own = next(c for c in recorded.results["communities"] if c["code"] == "YGT01")
        assert Decimal(list_rows(site.get("clerk", "/runs").text)[run_id]["amount"]) == Decimal(
            own["payable"]
        )
        response = site.get("auditor", f"/runs/{slug(run_id)}/statement.xlsx")
        assert response.status_code == 200 and response.headers["content-type"] == XLSX
        load_workbook(io.BytesIO(response.content))
        assert list_rows(site.get("admin", "/runs", kind="insurance_advance").text)[run_id]
    finally:
        close_drafts(site, "ins-2024-07")


def test_diff_of_two_runs_of_a_period(site: Site) -> None:
    """A run, three late records of C01 in September, a second run: the diff highlights
    what changed (the records are voided again afterwards: the county is shared)."""
    late = late_records(site)
    try:
        first = start(site, "compensation", "2024-09")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "late.csv"
            path.write_text(late, encoding="utf-8")
            site.service.import_services(path, actor="tester", today=date(2025, 6, 1))
        second = start(site, "compensation", "2024-09")
        assert second != first
        assert site.service.payout_run(first).state == "superseded"

        html = site.get("auditor", "/runs/diff", a=first, b=second).text
        assert attribute(html, "diff-first", "data-run-id") == first
        assert attribute(html, "diff-second", "data-run-id") == second
        changed = re.findall(
            r'<tr data-code="([^"]+)" data-key="([^"]+)" class="changed-row">\s*'
            r"(?:<th[^>]*>[^<]*</th>\s*)?<td>[^<]*</td>\s*"
            r'<td class="num changed" data-value="([^"]*)">[^<]*</td>\s*'
            r'<td class="num changed" data-value="([^"]*)">',
            html,
        )
        assert changed, html[:3000]
        rows_a = {i["code"]: i for i in site.service.payout_run(first).results["institutions"]}
        rows_b = {i["code"]: i for i in site.service.payout_run(second).results["institutions"]}
        assert "C01" in {code for code, *_ in changed}
        for code, key, a, b in changed:
            old, new = rows_a[code], rows_b[code]
            assert Decimal(a) == Decimal(old["components"].get(key, old.get(key)))
            assert Decimal(b) == Decimal(new["components"].get(key, new.get(key)))
            assert Decimal(a) != Decimal(b)
        assert 'id="diff-causes"' in html
        # unchanged institutions only on asking
        everything = site.get("auditor", "/runs/diff", a=first, b=second, all="true").text
        assert everything.count("<tr data-code=") > html.count("<tr data-code=")
        # the run page links to the diff with the other run of the period
        page = site.get("admin", f"/runs/{slug(second)}").text
        assert f"/runs/diff?a={first.replace('#', '%23')}" in page
    finally:
        void(site, late)
        close_drafts(site, "2024-09")


def late_records(site: Site) -> str:
    """Three of C01's September service records again, under source ids of their own."""
    text = Path(site.county.files["services"]).read_text(encoding="utf-8")
    header, *lines = text.splitlines()
    columns = header.split(",")
    picked = [
        line.split(",")
        for line in lines
        if line.split(",")[columns.index("institution_code")] == "C01"
        and line.split(",")[columns.index("service_date")].startswith("2024-09")
    ][:3]
    assert len(picked) == 3
    for n, row in enumerate(picked):
        row[columns.index("source_id")] = f"WEBRUNS{n:05d}"
    return "\n".join([header, *(",".join(r) for r in picked)]) + "\n"


def void(site: Site, late: str) -> None:
    ids = [line.split(",")[0] for line in late.splitlines()[1:]]
    rows = "".join(f"C01,{i},void,,,,,,测试撤回 test undone\n" for i in ids)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "void.csv"
        path.write_text(
            "institution_code,source_id,action,item_code,quantity,staff_id,service_date,"
            "compliant,reason\n" + rows,
            encoding="utf-8",
        )
        site.service.import_corrections(path, actor="tester", today=date(2025, 6, 1))


# ---- documents as PDF (SQLite only: the same code on either backend) -------------------------


def test_statement_and_payslips_pdf(sqlite_site: Site) -> None:
    site = sqlite_site
    run_id = closed_july(site)
    county = site.get("auditor", f"/runs/{slug(run_id)}/statement.pdf")
    assert county.status_code == 200 and county.headers["content-type"] == "application/pdf"
    assert county.content.startswith(b"%PDF")
    own = site.get("clerk", f"/runs/{slug(run_id)}/statement.pdf")
    assert own.status_code == 200 and own.content.startswith(b"%PDF")
    assert own.content != county.content

    perf = [
        r.run_id for r in site.service.payout_runs().values() if r.period.startswith("perf-2024-07")
    ]
    perf_id = perf[0] if perf else start(site, "distribution", "2024-07")
    slips = site.get("clerk", f"/runs/{slug(perf_id)}/payslips/C01V02.pdf")  # 2 people
    assert slips.status_code == 200 and slips.content.startswith(b"%PDF")
    assert slips.headers["content-type"] == "application/pdf"
    assert site.get("clerk", f"/runs/{slug(perf_id)}/payslips/C02.pdf").status_code == 403
    close_drafts(site, "perf-2024-07")


# ---- the list's filters, refusals and the guard ---------------------------------------------


def test_filters_and_refusals(sqlite_site: Site) -> None:
    site = sqlite_site
    closed_july(site)
    monthly = list_rows(site.get("auditor", "/runs", kind="monthly_advance", year="2024").text)
    assert monthly and {r["kind"] for r in monthly.values()} == {"monthly_advance"}
    drafts = list_rows(site.get("auditor", "/runs", state="draft").text)
    assert all(r["state"] == "draft" for r in drafts.values())
    assert list_rows(site.get("auditor", "/runs", year="1999").text) == {}
    # the empty choices of the filter form mean "all"
    assert site.get("auditor", "/runs", year="", kind="", state="").status_code == 200
    assert site.get("auditor", "/runs", kind="bogus").status_code == 422
    assert site.get("auditor", "/runs", year="20x4").status_code == 422

    not_ended = site.post("admin", "/runs", data={"ledger": "compensation", "period": "2099-01"})
    assert not_ended.status_code == 409 and "尚未结束" in not_ended.text
    for ledger, period in (("compensation", "2024-13"), ("compensation", "2024-Q1"), ("x", "2024")):
        bad = site.post("admin", "/runs", data={"ledger": ledger, "period": period})
        assert bad.status_code == 422, (ledger, period)
    assert site.get("admin", "/runs/2024-07~99").status_code == 404
    assert site.get("admin", "/runs/nonsense").status_code == 422


def test_forms_need_the_csrf_token_and_a_session(sqlite_site: Site) -> None:
    site = sqlite_site
    run_id = closed_july(site)
    for who, path, data in (
        ("admin", "/runs", {"ledger": "compensation", "period": "2024-09"}),
        ("auditor", f"/runs/{slug(run_id)}/approve", {"reference": "x"}),
        ("auditor", f"/runs/{slug(run_id)}/reject", {"reason": "x"}),
        ("admin", f"/runs/{slug(run_id)}/paid", {"reference": "x"}),
    ):
        refused = site.client(who).post(path, data=data)
        assert refused.status_code == 403, path
    anonymous = site.anonymous().get("/runs", headers={"Accept": "text/html"})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


@pytest.mark.parametrize("who", ["clerk", "auditor"])
def test_only_the_admin_starts_runs(sqlite_site: Site, who: str) -> None:
    response = sqlite_site.post(who, "/runs", data={"ledger": "compensation", "period": "2024-09"})
    assert response.status_code == 403
