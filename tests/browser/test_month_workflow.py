"""The month's work in a real browser: import (a bad file, then a good one), run, approve
as a second person (never the maker), mark paid, download the statement and payslips; a
clerk kept to their own institution. Chinese throughout."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.browser.conftest import LiveServer, accessibility_violations


def _records(live: LiveServer, rows: int, tag: str, spoil: bool = False) -> bytes:
    """`rows` of the county's service records again, with ids of their own (so they are
    new records); with `spoil`, every third row has a quantity of zero."""
    source = live.county.files["services"]  # type: ignore[attr-defined]
    out = io.StringIO()
    with source.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, list(reader.fieldnames or []))
        writer.writeheader()
        for i, row in enumerate(reader):
            if i == rows:
                break
            row["source_id"] = f"{tag}{i:05d}"
            if spoil and i % 3 == 0:
                row["quantity"] = "0"
            writer.writerow(row)
    return out.getvalue().encode("utf-8")


def _upload(page: Any, live: LiveServer, name: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    page.goto(live.url + "/imports")
    page.get_by_label("文件类型").select_option("services")
    page.locator("#upload-file").set_input_files(str(path))
    page.locator("#upload-button").click()
    page.wait_for_url("**/imports/*")
    page.locator("#job-state[data-finished]").wait_for(timeout=60_000)


def test_an_import_with_errors_shows_every_problem_and_a_clean_one_its_counts(
    as_user: Any, live: LiveServer, tmp_path: Path, screenshot: Any
) -> None:
    page = as_user("admin")
    _upload(page, live, "坏文件.csv", _records(live, 30, "BRBAD", spoil=True), tmp_path)
    state = page.locator("#job-state")
    assert state.get_attribute("data-state") == "refused"
    problems = page.locator("#job-problems tbody tr")
    assert problems.count() == 10  # rows 2, 5, 8, … of the file: every third row
    assert page.locator("#job-problem-count").get_attribute("data-value") == "10"
    first = problems.first
    assert (
        first.get_attribute("data-row") == "2" and first.get_attribute("data-column") == "quantity"
    )
    with page.expect_download() as download:
        page.locator("#job-problems-xlsx").click()
    sheet = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert sheet.max_row == 1 + 10
    screenshot(page, "import-problems")

    _upload(page, live, "好文件.csv", _records(live, 30, "BRGOOD"), tmp_path)
    assert page.locator("#job-state").get_attribute("data-state") == "done"
    assert page.locator("#job-rows").get_attribute("data-value") == "30"
    assert accessibility_violations(page) == []


def test_the_maker_cannot_approve_and_a_second_person_can(
    as_user: Any, live: LiveServer, screenshot: Any
) -> None:
    admin = as_user("admin")
    admin.goto(live.url + "/runs")
    assert admin.evaluate("typeof echarts") == "undefined"  # no chart here: ECharts not fetched
    admin.locator("#start-ledger").select_option("compensation")
    admin.locator("#start-period").fill("2024-03")
    admin.locator("#start-run-button").click()
    admin.wait_for_url("**/runs/2024-03~*")
    run_id = admin.locator("#run-title").get_attribute("data-run-id")
    assert admin.locator("#run-state").get_attribute("data-state") == "draft"
    assert admin.locator("#approve-button").count() == 0  # never offered to the maker
    assert admin.locator("#maker-notice").is_visible()
    recorded = live.service.payout_run(run_id)  # type: ignore[attr-defined]
    shown = admin.locator("#run-total").get_attribute("data-value")
    assert shown == recorded.results["totals"]["payable"]
    assert accessibility_violations(admin) == []

    auditor = as_user("auditor")
    auditor.goto(admin.url)
    screenshot(auditor, "run-approve")
    auditor.locator("#approve-reference").fill("财审〔2024〕3号")
    auditor.locator("#approve-button").click()
    auditor.wait_for_url("**done=approved*")
    assert auditor.locator("#run-state").get_attribute("data-state") == "approved"

    admin.reload()
    admin.locator("#paid-reference").fill("国库支付 2024-04-02")
    admin.locator("#paid-button").click()
    admin.wait_for_url("**done=paid*")
    assert admin.locator("#run-state").get_attribute("data-state") == "paid"
    with admin.expect_download() as xlsx:
        admin.locator("#statement-xlsx").click()
    assert openpyxl.load_workbook(io.BytesIO(Path(xlsx.value.path()).read_bytes())).sheetnames
    with admin.expect_download() as pdf:
        admin.locator("#statement-pdf").click()
    assert Path(pdf.value.path()).read_bytes()[:5] == b"%PDF-"
    admin.goto(live.url + "/runs")
    screenshot(admin, "runs")


def test_payslips_of_a_distribution_run_download_as_pdf(as_user: Any, live: LiveServer) -> None:
    admin = as_user("admin")
    admin.goto(live.url + "/runs")
    admin.locator("#start-ledger").select_option("distribution")
    admin.locator("#start-period").fill("2024")
    admin.locator("#start-run-button").click()
    admin.wait_for_url("**/runs/perf-2024~*")
    link = admin.locator('a.payslips[href$="/C01V02.pdf"]')  # a clinic of two: quick to print
    with admin.expect_download() as pdf:
        link.click()
    assert Path(pdf.value.path()).read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("path", ["/institutions/C02", "/institutions/C02?year=2024"])
def test_a_clerk_cannot_open_another_institution(as_user: Any, live: LiveServer, path: str) -> None:
    clerk = as_user("clerk")
    response = clerk.goto(live.url + path)
    assert response.status == 403
    assert "无权限" in clerk.get_by_role("heading", level=1).inner_text()


def test_a_clerk_s_script_gets_403_for_another_institution_s_fragments_and_files(
    as_user: Any, live: LiveServer, tmp_path: Path
) -> None:
    admin = as_user("admin")
    _upload(admin, live, "管理员的文件.csv", _records(live, 5, "BRADM", spoil=True), tmp_path)
    job = admin.url.rsplit("/", 1)[-1]
    clerk = as_user("clerk")
    clerk.goto(live.url + "/institutions/C01?year=2024")
    fetched = clerk.evaluate(
        """async (paths) => Promise.all(paths.map(async (p) => {
               const r = await fetch(p, {headers: {Accept: "text/html-fragment"}});
               return [p, r.status];
           }))""",
        [
            f"/imports/{job}/status",
            f"/imports/{job}/problems.xlsx",
            "/explain/institution/C02/records?period=2024-03",
            "/institutions/C02?year=2024",
        ],
    )
    assert {path: status for path, status in fetched} == {path: 403 for path, _ in fetched}
