"""Helpers of the insurance-fund import tests: write a table as CSV, XLSX or JSON lines under
English or Chinese headers, and the county's two medical communities."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from dangliang.application import Dangliang
from dangliang.domain.problems import Problem
from dangliang.importers.formats import FORMATS

TODAY = date(2025, 1, 31)
ACTOR = "医保导入员 tester"  # non-ASCII on purpose: the stored JSON must match the library's

COMMUNITIES = [
    ["YGT01", "德清县人民医院医共体", "H001", "德清县人民医院", "C01;C02;C03；C04、C05,C06"],
    ["YGT02", "德清县中医院医共体", "H002", "德清县中医院", "C07;C08;C09;C10;C11;C12"],
]


def write_table(
    path: Path,
    kind: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    chinese: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """`rows` (cells in the order of `columns`, canonical names) as the file `path` names:
    .csv, .xlsx or .jsonl, under the Chinese labels with `chinese`. None is a blank cell."""
    labels = {c.name: c.label_zh for c in FORMATS[kind].columns}
    header = [labels[c] if chinese else c for c in columns]
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(header)
        for row in rows:
            sheet.append(list(row))
        book.save(path)
    elif path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                cells = {h: v for h, v in zip(header, row, strict=True) if v is not None}
                f.write(json.dumps(cells, ensure_ascii=False, default=str) + "\n")
    else:
        with path.open("w", encoding=encoding, newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows([["" if v is None else v for v in row] for row in rows])
    return path


def communities_file(path: Path, rows: Sequence[Sequence[Any]] = COMMUNITIES) -> Path:
    columns = ("community_code", "name", "lead_hospital_code", "lead_hospital_name", "members")
    return write_table(path, "communities", columns, rows)


def register_communities(app: Dangliang, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    app.import_insurance(
        "communities", communities_file(folder / "communities.csv"), actor=ACTOR, today=TODAY
    )


def cells(problems: Sequence[Problem]) -> set[tuple[int | None, str | None]]:
    return {(p.row, p.column) for p in problems}


def the_problem(problems: Sequence[Problem], row: int, column: str) -> Problem:
    found = [p for p in problems if (p.row, p.column) == (row, column)]
    assert len(found) == 1, f"expected one problem at row {row}, {column}: {problems}"
    return found[0]
