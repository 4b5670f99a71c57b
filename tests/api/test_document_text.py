"""Bad input into documents, end to end on SQLite and PostgreSQL: names, references, reasons
and file names that a spreadsheet would run as formulas are written as text in every document
people open in one — the statements (支付单, 拨付单) in XLSX and CSV, the distribution sheet, the
problem report of a background import — and come back exactly as they were supplied."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from dangliang.application.accounts import Principal
from dangliang.application.uploads import new_upload_path
from tests.api.conftest import FUND_FILES, World, upload
from tests.api.test_api import rewrite

INSTITUTION = '=HYPERLINK("http://x","y")'
STAFF = "+1+1"
OTHER_STAFF = "@SUM(A1)"
COMMUNITY = "-2"
MAKER = "@maker"
REASON = "+1+1 收入待核"
APPROVAL = "-2"
PAID = "@SUM(A1)"
FILE = '=HYPERLINK("http://x","y").csv'


def cells(content: bytes) -> Iterator[Any]:
    """Every cell of every sheet of an XLSX, after checking no sheet holds a formula."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert not re.search(rb"<f[ >]", z.read(name)), name  # no formula anywhere
    book = load_workbook(io.BytesIO(content))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            yield from row


def texts(content: bytes) -> dict[str, str]:
    """Each text in the workbook (and the text inside a longer one) → its data type."""
    found: dict[str, str] = {}
    for cell in cells(content):
        assert cell.data_type != "f", cell.coordinate
        if isinstance(cell.value, str):
            found[cell.value] = cell.data_type
    return found


def assert_text(content: bytes, *expected: str) -> None:
    found = texts(content)
    for text in expected:
        assert found.get(text) == "s", (text, sorted(found)[:40])


@pytest.fixture(scope="module")
def world(world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world with C01 renamed to a formula, two of its staff and a fund community too,
    and a user "maker" (an administrator) whose name starts with @."""
    folder = tmp_path_factory.mktemp("hostile")
    county = world.county
    renamed = rewrite(
        county.files["institutions"],
        folder / "institutions.csv",
        lambda row: [row[0], INSTITUTION, *row[2:]] if row[0] == "C01" else row,
    )
    assert upload(world, "institutions", renamed).status_code == 200
    with county.files["staff"].open(encoding="utf-8") as f:
        c01 = [r["staff_id"] for r in csv.DictReader(f) if r["institution_code"] == "C01"]
    names = {c01[1]: STAFF, c01[2]: OTHER_STAFF}
    staff = rewrite(
        county.files["staff"],
        folder / "staff.csv",
        lambda row: [*row[:2], names.get(row[0], row[2]), *row[3:]],
    )
    assert upload(world, "staff", staff).status_code == 200
    communities = folder / "communities.csv"
    communities.write_text(FUND_FILES["communities"].replace("县人民医院医共体", COMMUNITY))
    sent = world.post(
        "/insurance/imports/communities",
        "admin",
        files={"file": ("communities.csv", communities.read_bytes())},
    )
    assert sent.status_code == 200, sent.text
    token = world.service.users.add(MAKER, role="admin", institution=None, actor="tester")
    return World(world.service, world.client, county, {**world.tokens, "maker": token})


def test_a_statement_shows_names_references_and_reasons_as_given(world: World) -> None:
    first = world.post("/payout-runs", "maker", {"period": "2024-05"}).json()
    path = "/payout-runs/" + first["run_id"].replace("#", "%23")
    rejected = world.post(path + "/reject", "auditor", {"reason": REASON})
    assert rejected.status_code == 200, rejected.text
    rejected_xlsx = world.get(path + "/statement", "auditor")
    assert rejected_xlsx.status_code == 200
    assert_text(rejected_xlsx.content, INSTITUTION, REASON, MAKER)

    again = world.post("/payout-runs", "maker", {"period": "2024-05"}).json()
    path = "/payout-runs/" + again["run_id"].replace("#", "%23")
    assert world.post(path + "/approve", "auditor", {"reference": APPROVAL}).status_code == 200
    assert world.post(path + "/paid", "admin", {"reference": PAID}).status_code == 200
    xlsx = world.get(path + "/statement", "auditor").content
    assert_text(xlsx, INSTITUTION, MAKER, APPROVAL, PAID)
    book = load_workbook(io.BytesIO(xlsx))
    money = [c for c in book.worksheets[0].iter_rows() for c in c if c.number_format == "#,##0.00"]
    assert money and all(c.data_type == "n" for c in money)  # numbers stay numbers

    table = world.get(path + "/statement", "auditor", format="csv").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(table)))
    c01 = next(r for r in rows if r[0] == "C01")
    assert c01[1] == "'" + INSTITUTION  # the documented CSV quoting: shown, not run
    assert all(not v.startswith(("=", "+", "@")) for row in rows for v in row)


def test_a_distribution_sheet_shows_staff_and_institution_names_as_given(world: World) -> None:
    created = world.post("/distribution-runs", "maker", {"period": "2024"})
    assert created.status_code == 201, created.text
    path = "/payout-runs/" + created.json()["run_id"].replace("#", "%23")
    sheet = world.get(f"{path}/sheets/C01", "admin")
    assert sheet.status_code == 200
    found = texts(sheet.content)
    assert found[STAFF] == found[OTHER_STAFF] == "s"
    assert any(INSTITUTION in t for t in found)  # the title and the institution row
    assert all(t == "s" for t in found.values())


def test_a_fund_statement_shows_community_names_as_given(world: World) -> None:
    created = world.post("/insurance/runs", "maker", {"period": "2024-03"})
    assert created.status_code == 201, created.text
    path = "/insurance/runs/" + created.json()["run_id"].replace("#", "%23")
    xlsx = world.get(path + "/statement", "auditor")
    assert xlsx.status_code == 200, xlsx.text
    found = texts(xlsx.content)
    assert found[COMMUNITY] == found[MAKER] == "s"
    as_csv = world.get(path + "/statement", "auditor", format="csv").content
    rows = list(csv.reader(io.StringIO(as_csv.decode("utf-8-sig"))))
    assert next(r for r in rows if r[0] == "YGT01")[1] == COMMUNITY  # "-2" is a plain number


def test_a_problem_report_shows_the_file_name_and_cells_as_given(
    world: World, tmp_path: Path
) -> None:
    bad = rewrite(
        world.county.files["services"],
        tmp_path / "bad.csv",
        lambda row: [*row[:2], "@SUM(A1)", *row[3:]] if row[0].endswith("7") else row,
    )
    staged = new_upload_path("bad.csv", "services")
    staged.write_bytes(bad.read_bytes())
    admin = Principal("局管理员", "admin", None, None)
    jobs = world.service.import_jobs
    job = jobs.start("services", staged, admin, display_name=FILE, today=date(2025, 6, 1))
    assert jobs.wait(job, 120)["state"] == "refused"
    found = texts(jobs.problems_xlsx(job, admin))
    assert found[FILE] == "s"
    assert any("@SUM(A1)" in t for t in found)
