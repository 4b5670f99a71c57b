"""The column-at-a-time fast path changes nothing: for any chunk of rows, good and bad mixed,
checking it with the fast path gives the very same prepared records (ids, row numbers, stored
bodies, in file order), problems and raw rows as checking it row by row."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.importers.bulk_import import CheckContext, check_chunk
from dangliang.importers.csv_columns import NotPlain, column_frames
from dangliang.importers.formats import SERVICES
from dangliang.importers.readers import open_table
from dangliang.importers.service_columns import COLUMNS, ServiceColumns
from dangliang.importers.services import service_spec
from dangliang.projections.registry import Registry
from tests.conftest import examples

TODAY = date(2024, 6, 30)
REGISTRY = Registry(
    institutions={"C01": ("township", None), "C02": ("township", None), "V01": ("village", "C01")},
    staff_postings={
        "S1": [(date(2020, 1, 1), None, "C01")],
        "S2": [(date(2020, 1, 1), date(2024, 3, 31), "C01"), (date(2024, 4, 1), None, "C02")],
        "S3": [(date(2020, 1, 1), date(2024, 5, 1), "C02"), (date(2024, 4, 1), None, "V01")],
        "S4": [],
    },
    item_categories={"BM1": "basic_medical", "PH1": "basic_public_health", "XX": "other"},
    item_value_starts={"BM1": [date(2024, 1, 1)], "PH1": [date(2024, 3, 1), date(2024, 5, 1)]},
    staff_names={"S1": "甲", "S2": "乙", "S3": "丙", "S4": "丁"},
)
CONTEXT = CheckContext("f.csv", TODAY, "tester", "sha256:0")

cells = {
    "source_id": st.sampled_from(["HIS1", "HIS2", "来源-3", 'q"uote', "back\\slash", "x" * 129]),
    "institution_code": st.sampled_from(["C01", "C02", "V01", "ZZ", "c01", "C 1", "C01é"]),
    "staff_id": st.sampled_from(["S1", "S2", "S3", "S4", "S9"]),
    "item_code": st.sampled_from(["BM1", "PH1", "XX", "NO"]),
    "quantity": st.sampled_from(
        ["1", "2", "10", "999999", "1000000", "0", "-1", "1.5", "2.50", "010", "1e1", "x"]
    ),
    "service_date": st.sampled_from(
        [
            "2024-01-15",
            "2024-02-10",
            "2024-03-31",
            "2024-04-01",
            "2024-04-15",
            "2024-05-02",
            "2024-07-01",
            "2024-02-30",
            "2024/3/5",
            "20240305",
            "2023-12-31",
            "March",
        ]
    ),
    "patient_ref": st.sampled_from([None, "P1", "患者", 'P"x', "tab\there"]),
    "compliant": st.sampled_from([None, "true", "false", "是", "不达标", "N", "1", "maybe"]),
}


# Rows that pass every check (staff posted at the institution that day, an item with a value)
_POSTED = [
    ("C01", "S1", "2024-01-15"),
    ("C01", "S2", "2024-03-31"),
    ("C02", "S2", "2024-04-01"),
    ("C02", "S3", "2024-04-15"),  # overlapping postings: valid, but row by row
    ("V01", "S3", "2024-04-15"),
    ("C01", "S1", "2024-06-30"),
]


@st.composite
def rows_mostly_good(draw: st.DrawFn, pool: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid row, then (most of the time) one cell replaced by any value from `cells`."""
    institution, staff, day = draw(st.sampled_from(_POSTED))
    row = {
        "source_id": draw(st.sampled_from(["HIS1", "HIS2", "HIS3"])),
        "institution_code": institution,
        "staff_id": staff,
        "item_code": draw(st.sampled_from(["BM1", "PH1"])),
        "quantity": draw(st.sampled_from(["1", "2", "10"])),
        "service_date": day,
        "patient_ref": draw(st.sampled_from([None, "P1"])),
        "compliant": draw(st.sampled_from([None, "true", "false"])),
    }
    pool = pool or cells
    if draw(st.integers(0, 3)):
        column = draw(st.sampled_from(sorted(pool)))
        row[column] = draw(pool[column])
    return row


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(rows_mostly_good() | st.fixed_dictionaries(cells), min_size=1, max_size=40))
def test_the_fast_path_prepares_what_the_row_checks_prepare(rows: list[dict[str, Any]]) -> None:
    spec = service_spec(REGISTRY)
    chunk = [(n, row) for n, row in enumerate(rows, start=2)]
    fast = ServiceColumns(REGISTRY, TODAY)
    assert check_chunk(spec, CONTEXT, chunk, fast) == check_chunk(spec, CONTEXT, chunk)


def test_plain_rows_take_the_fast_path_and_the_others_go_row_by_row() -> None:
    plain = {
        "source_id": "HIS1",
        "institution_code": "C02",
        "staff_id": "S2",
        "item_code": "PH1",
        "quantity": "3",
        "service_date": "2024-04-15",
        "patient_ref": None,
        "compliant": "false",
    }
    overlapping = dict(plain, source_id="HIS2", staff_id="S3", institution_code="V01")
    decimal = dict(plain, source_id="HIS3", quantity="1.5")
    prepared, rest = ServiceColumns(REGISTRY, TODAY).split(
        [(2, plain), (3, overlapping), (4, decimal)]
    )
    assert [(n, body) for _, n, body in prepared] == [
        (2, ',"C02","HIS1","S2","PH1",19828,null,3,0]')  # 2024-04-15
    ]
    assert [n for n, _ in rest] == [3, 4]


# ---- plain CSV files read a batch of columns at a time (csv_columns) ----------------------

plain_cells = {
    **cells,
    "source_id": st.sampled_from(["HIS1", "HIS2", " HIS3 ", "'=HIS4", "来源-5", "HIS6"]),
    "staff_id": st.sampled_from(["S1", "S2", " S1", "S3 "]),
    "quantity": st.sampled_from(["1", "2", " 3", "'-1", "1.5"]),
    "patient_ref": st.sampled_from([None, "P1", "患者", " P2", "'+P3", "O'Brien", "   "]),
}


GOOD = {
    "source_id": "HIS1",
    "institution_code": "C01",
    "staff_id": "S1",
    "item_code": "PH1",
    "quantity": "1",
    "service_date": "2024-03-05",
    "patient_ref": None,
    "compliant": None,
}


def _write_csv(path: Path, rows: list[dict[str, Any]], newline: str = "\n") -> None:
    lines = [",".join(COLUMNS)]
    lines += [",".join(row[c] or "" for c in COLUMNS) for row in rows]
    path.write_bytes((newline.join(lines) + newline).encode())


def _checked_by_frames(path: Path, rows_per_frame: int) -> tuple[Any, Any]:
    reader = open_table(path, SERVICES)
    frames = column_frames(reader, rows_per_frame)
    assert frames is not None
    fast = ServiceColumns(REGISTRY, TODAY)
    prepared, problems = [], []
    for frame in frames:
        found, rest = fast.split_frame(frame)
        more, bad, _ = check_chunk(service_spec(REGISTRY), CONTEXT, rest, found=found)
        prepared += more
        problems += bad
    return prepared, problems


def _checked_row_by_row(path: Path) -> tuple[Any, Any]:
    chunk = list(open_table(path, SERVICES))
    prepared, problems, _ = check_chunk(service_spec(REGISTRY), CONTEXT, chunk)
    return prepared, problems


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        rows_mostly_good(plain_cells) | st.fixed_dictionaries(plain_cells), min_size=1, max_size=30
    ),
    st.sampled_from(["\n", "\r\n"]),
    st.integers(1, 12),
)
def test_a_plain_file_read_as_columns_is_checked_as_row_by_row(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[dict[str, Any]],
    newline: str,
    rows_per_frame: int,
) -> None:
    rows = [r for r in rows if not any('"' in (v or "") or "," in (v or "") for v in r.values())]
    if not rows or all(not any(r.values()) for r in rows):
        return
    path = tmp_path_factory.mktemp("plain") / "services.csv"
    _write_csv(path, rows, newline)
    by_frames, row_by_row = _checked_by_frames(path, rows_per_frame), _checked_row_by_row(path)
    assert by_frames[0] == row_by_row[0]
    # the same problems; their order follows the chunks (type checks, then references)
    assert sorted(by_frames[1], key=_where) == sorted(row_by_row[1], key=_where)


def _where(p: Any) -> tuple[int, str]:
    return (p.row, p.column or "")


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace("\n", "\n\n", 2),  # a blank line
        lambda text: text.replace("HIS1", '"HIS1"', 1),  # a quoted cell
        lambda text: text.replace("\n", "\r", 2),  # a carriage return alone
        lambda text: text.replace(",", ";", 1),  # not the format's header
        lambda text: text.replace(",PH1,", ",PH1,,", 1),  # one more cell, counts differ
    ],
)
def test_a_file_that_is_not_plain_is_read_row_by_row(tmp_path: Path, damage: Any) -> None:
    path = tmp_path / "services.csv"
    _write_csv(path, [GOOD] * 3)
    path.write_text(damage(path.read_text("utf-8")), "utf-8")
    assert column_frames(open_table(path, SERVICES), 10) is None


def test_invalid_utf8_after_a_plain_start_is_read_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    _write_csv(path, [GOOD] * 2)
    path.write_bytes(path.read_bytes() + b"HIS9,C01,S1,BM1,1,2024-03-05,\xff,\n")
    assert column_frames(open_table(path, SERVICES), 10) is None


def test_a_ragged_line_the_counts_miss_stops_the_column_read(tmp_path: Path) -> None:
    """One line a cell too long, another a cell too short: the byte counts agree, polars
    stops part-way and the importer reads the file again row by row (`NotPlain`)."""
    path = tmp_path / "services.csv"
    _write_csv(path, [GOOD] * 4)
    lines = path.read_text("utf-8").split("\n")
    lines[2] += ",extra"
    lines[3] = lines[3].rsplit(",", 1)[0]
    path.write_text("\n".join(lines), "utf-8")
    frames = column_frames(open_table(path, SERVICES), 1)
    assert frames is not None
    with pytest.raises(NotPlain):
        list(frames)


def test_a_chunk_with_a_cell_that_is_not_text_goes_row_by_row() -> None:
    odd = dict(GOOD, quantity=3)  # a reader hands text; anything else is not guessed at
    prepared, rest = ServiceColumns(REGISTRY, TODAY).split([(2, GOOD), (3, odd)])
    assert prepared == [] and [n for n, _ in rest] == [2, 3]


def test_the_checks_hold_after_polars_met_dates_under_a_frozen_clock() -> None:
    """polars keeps the class of the first Python dates it meets: met under a test's frozen
    clock (freezegun's fake class), real dates make an untyped column ever after in that
    process ("cannot cast 'Object' type"), whichever test comes next. The checks give polars
    day numbers, never Python dates (`service_columns._dates`). In a process of its own."""
    script = (
        "from datetime import date\n"
        "import polars as pl\n"
        "from freezegun import freeze_time\n"
        "with freeze_time('2024-12-31'):\n"
        "    pl.DataFrame({'d': [date(2024, 1, 1)]})\n"
        "from tests.unit.importers.test_service_columns import GOOD, REGISTRY, TODAY\n"
        "from dangliang.importers.service_columns import ServiceColumns\n"
        "prepared, rest = ServiceColumns(REGISTRY, TODAY).split([(2, GOOD)])\n"
        "print(len(prepared), len(rest))\n"
    )
    root = Path(__file__).resolve().parents[3]
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, check=False
    )
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.split() == ["1", "0"]
