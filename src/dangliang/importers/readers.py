"""Streaming table readers for CSV, XLSX and JSON lines that collect problems instead of raising.

`open_table(path, fmt)` picks a reader by the file's extension and checks the file at once:
encoding, header, required columns. Whatever it finds is kept in `reader.problems` as
`Problem` values (file-level problems, row 1 or no row). Iterating the reader then yields

    (row_number, {canonical column name: stripped text, or None when blank or absent})

for every non-empty data row, and adds the row-level problems it meets to the same list.

Rules the callers can rely on:

* Row numbers are the ones a person sees: the header is row 1 and the first data row is
  row 2 (in a JSON lines file, the 1-based line number). Blank rows are skipped but still
  counted, so the numbers keep matching the spreadsheet.
* Every yielded dict has *all* the format's columns, in the format's order; a column the
  file does not have is None. Values are always text (never numbers): the validators parse.
* A file with file-level problems yields nothing. A row that has a reader problem (more
  cells than headers, a line that is not a JSON object, a nested JSON value) is reported and
  *not* yielded, so the validators do not report the same broken row a second time.
* Memory stays flat: files are read as streams, never loaded whole. `progress()` reports
  (done, total) in bytes for CSV and JSON lines, in rows for XLSX; it reaches (total, total)
  when the iteration ends.

This module picks the reader; the readers live in `table_reader.py` (the `TableReader` base
and the header → column mapping), `csv_reader.py`, `xlsx_reader.py` and `jsonl_reader.py`.
"""

from __future__ import annotations

from pathlib import Path

from dangliang.importers.csv_reader import CsvReader
from dangliang.importers.formats import FileFormat
from dangliang.importers.jsonl_reader import JsonLinesReader
from dangliang.importers.table_reader import TableReader
from dangliang.importers.xlsx_reader import XlsxReader

__all__ = ["CSV_SUFFIXES", "JSONL_SUFFIXES", "XLSX_SUFFIXES", "open_table"]

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx",)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def open_table(path: Path | str, fmt: FileFormat) -> TableReader:
    """Open `path` as a table of `fmt`, choosing the reader by the file's extension.

    Never raises for a bad file: look at `reader.problems` (file-level problems are there
    as soon as this returns; a reader with file-level problems yields no rows).
    """
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return CsvReader(path, fmt)
    if suffix in XLSX_SUFFIXES:
        return XlsxReader(path, fmt)
    if suffix in JSONL_SUFFIXES:
        return JsonLinesReader(path, fmt)
    reader = TableReader(path, fmt)
    shown = suffix or "（无扩展名）"
    shown_en = suffix or "(no extension)"
    hint_zh = "；.xls 请在 Excel 中另存为 .xlsx" if suffix == ".xls" else ""
    hint_en = "; save .xls files as .xlsx in Excel" if suffix == ".xls" else ""
    reader._file_problem(
        None,
        None,
        f"不支持的文件类型 {shown}，请使用 .csv、.tsv、.xlsx 或 .jsonl{hint_zh}",
        f"unsupported file type {shown_en}; use .csv, .tsv, .xlsx or .jsonl{hint_en}",
    )
    return reader
