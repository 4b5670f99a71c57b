"""A person's text in a spreadsheet cell (`importers.cell_text`): XLSX cells typed as text with
the value unchanged; CSV cells quoted against formulas and read back as they were."""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from dangliang.domain.problems import Problem
from dangliang.importers.bulk_import import write_rejects
from dangliang.importers.cell_text import (
    csv_text,
    from_csv_text,
    looks_like_formula,
    text_cell,
    text_into,
    xlsx_text,
)
from dangliang.importers.formats import FORMATS
from dangliang.importers.readers import open_table

HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    "#N/A",
    "-1+2",
    "'=quoted already",
    "''@twice",
]


def shown(stored: str) -> str:
    """What a spreadsheet shows for a stored cell text: the format's `_xHHHH_` decoded (openpyxl
    reads the stored text as it is)."""
    return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), stored)


def test_text_into_keeps_the_exact_text_as_a_string_in_normal_and_write_only_sheets(
    tmp_path: Path,
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row, text in enumerate([*HOSTILE, "乾元镇卫生院", ""], start=1):
        text_into(sheet.cell(row=row, column=1), text)
        sheet.cell(row=row, column=2, value=row)  # numbers stay numbers
    book.save(tmp_path / "normal.xlsx")
    streamed = Workbook(write_only=True)
    ws = streamed.create_sheet("s")
    for row, text in enumerate(HOSTILE, start=1):
        ws.append([text_cell(ws, text), row])
    streamed.save(tmp_path / "write-only.xlsx")

    for name, title in (("normal.xlsx", None), ("write-only.xlsx", "s")):
        loaded = load_workbook(tmp_path / name)
        found = loaded[title] if title else loaded.active
        assert found is not None
        for row, text in enumerate(HOSTILE, start=1):
            cell = found.cell(row=row, column=1)
            assert (shown(cell.value), cell.data_type) == (text, "s"), (name, text)
            assert cell.value == text or "\r" in text  # a carriage return is stored escaped
            assert cell.quotePrefix is looks_like_formula(text)  # editing keeps it text
            number = found.cell(row=row, column=2)
            assert (number.value, number.data_type) == (row, "n")
        with zipfile.ZipFile(tmp_path / name) as z:
            sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
            assert not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheets)


def test_characters_xml_cannot_hold_are_written_in_the_formats_escape(tmp_path: Path) -> None:
    assert xlsx_text("a\x07b") == "a_x0007_b"  # what a spreadsheet shows as the character
    assert xlsx_text("_x0041_") == "_x005F_x0041_"  # a literal escape is shown as written
    assert xlsx_text("姓名 name\ttab\nline") == "姓名 name\ttab\nline"
    assert xlsx_text("\r=1+1") == "_x000D_=1+1"  # XML would read it back as a line feed
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    text_into(sheet.cell(row=1, column=1), "=a\x01b")  # openpyxl alone refuses this text
    book.save(tmp_path / "control.xlsx")
    cell = load_workbook(tmp_path / "control.xlsx").active["A1"]  # type: ignore[index]
    assert (cell.value, cell.data_type) == ("=a_x0001_b", "s")


@pytest.mark.parametrize("text", [*HOSTILE, "普通文本", "", "'", "'abc", "'-2", "3.50"])
def test_csv_text_quotes_what_would_run_and_gives_it_back_exactly(text: str) -> None:
    quoted = csv_text(text)
    assert from_csv_text(quoted) == text
    assert not quoted.startswith(("=", "+", "@", "\t", "\r"))
    if quoted.startswith("-"):
        assert quoted in ("-2",)  # only a plain number starts with a sign


def test_numbers_stay_numbers_in_csv() -> None:
    assert [csv_text(t) for t in ("-2", "+3.50", "-0.01", "12")] == ["-2", "+3.50", "-0.01", "12"]
    assert [csv_text(t) for t in ("-1+2", "-2e3", "+", "-")] == ["'-1+2", "'-2e3", "'+", "'-"]


def test_a_rejects_file_cannot_run_and_imports_back_as_the_cells_it_was_made_of(
    tmp_path: Path,
) -> None:
    fmt = FORMATS["claims"]
    source = tmp_path / "claims.csv"
    row = {c: "" for c in fmt.column_names}
    row.update(
        claim_id="K1",
        insured_ref='=HYPERLINK("http://x","y")',
        community_code="@SUM(A1)",
        institution_code="+1+1",
        fund_amount="-2",
    )
    problems = [Problem("claims.csv", 2, "fund_amount", "必须大于 0", "must be positive")]
    out = write_rejects(source, {2: row}, problems, fmt)
    with out.open(encoding="utf-8-sig", newline="") as f:
        header, written = list(csv.reader(f))
    cells = dict(zip(header, written, strict=True))
    assert cells["insured_ref"] == '\'=HYPERLINK("http://x","y")'
    assert (cells["community_code"], cells["institution_code"]) == ("'@SUM(A1)", "'+1+1")
    assert cells["fund_amount"] == "-2"  # a number: nothing to run, left as it is
    assert not any(c.startswith(("=", "+", "@", "\t", "\r")) for c in written)

    with open_table(out, fmt) as table:
        (_, read), *_ = list(table)
    for column in ("insured_ref", "community_code", "institution_code", "fund_amount"):
        assert read[column] == row[column], column
