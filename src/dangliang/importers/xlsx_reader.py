"""The XLSX table reader: the first worksheet of an .xlsx workbook, read with openpyxl in
read-only mode, as `readers.open_table` returns it for .xlsx files. Cell values (numbers,
dates, booleans) are turned into the text a validator parses.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from dangliang.importers.formats import FileFormat
from dangliang.importers.table_reader import (
    Layout,
    Row,
    TableReader,
    irregular_row,
    read_header,
)

# ---------------------------------------------------------------------------------------
# XLSX
# ---------------------------------------------------------------------------------------


def _cell_text(value: Any) -> str | None:
    """An Excel cell value as the text a validator parses (None when blank)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        # repr is the shortest text that round-trips: 1.1, never 1.1000000000000001.
        return str(Decimal(repr(value)))
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    return str(value).strip() or None


class XlsxReader(TableReader):
    """The first worksheet of an .xlsx workbook; row 1 is the header."""

    def __init__(self, path: Path | str, fmt: FileFormat):
        super().__init__(path, fmt)
        self._layout: Layout | None = None
        self._workbook: Any = None
        self._pending: Iterator[tuple[Any, ...]] | None = None
        self._open_first()

    def _load(self) -> tuple[Any, Iterator[tuple[Any, ...]], int]:
        import openpyxl  # imported here: only needed for Excel files

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Workbook contains no default style"
            workbook = openpyxl.load_workbook(
                self.path, read_only=True, data_only=True, keep_links=False
            )
        try:
            sheets = workbook.worksheets
            if not sheets:
                raise ValueError("the workbook has no worksheet")
            sheet = sheets[0]
            total = sheet.max_row or 0
            # The stored dimension is sometimes wrong (some exporters write "A1"); trusting
            # it would silently cut rows or columns off, so read the sheet as it really is.
            sheet.reset_dimensions()
            return workbook, sheet.iter_rows(values_only=True), total
        except BaseException:
            workbook.close()
            raise

    def _open_first(self) -> None:
        workbook = None
        try:
            workbook, rows, total = self._load()
            header = next(rows, None)
        except Exception as exc:  # zipfile.BadZipFile, KeyError, XML errors, ...
            if workbook is not None:
                workbook.close()
            self._file_problem(
                None,
                None,
                f"无法读取 Excel 文件：{_reason(exc)}",
                f"cannot read the Excel file: {_reason(exc)}",
            )
            return
        self._total = total
        self._layout = read_header(
            self, None if header is None else [_cell_text(v) for v in header]
        )
        if self._layout is None:
            workbook.close()
            return
        self._workbook = workbook
        self._pending = rows

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()
            self._workbook = None
        self._pending = None

    def _rows(self) -> Iterator[tuple[int, Row]]:
        layout = self._layout
        assert layout is not None
        if self._pending is not None:
            rows = self._pending
            self._pending = None
        else:
            try:
                self._workbook, rows, self._total = self._load()
                next(rows, None)
            except Exception as exc:
                self._row_problem(
                    None,
                    None,
                    f"无法读取 Excel 文件：{_reason(exc)}",
                    f"cannot read the Excel file: {_reason(exc)}",
                )
                return
        width = layout.width
        build = layout.build
        rec = 1
        self._done = 1
        try:
            while True:
                try:
                    row = next(rows, None)
                except Exception as exc:
                    self._row_problem(
                        rec + 1,
                        None,
                        f"无法读取 Excel 文件第{rec + 1}行：{_reason(exc)}，已停止读取",
                        f"cannot read the Excel file at row {rec + 1}: {_reason(exc)}; "
                        "stopped reading",
                    )
                    break
                if row is None:
                    break
                rec += 1
                self._done = rec
                vals = [(v.strip() or None) if v.__class__ is str else _cell_text(v) for v in row]
                if len(vals) == width:
                    if any(vals):
                        yield rec, build(vals)
                else:
                    out = irregular_row(self, layout, rec, vals)
                    if out is not None:
                        yield rec, out
        finally:
            self.close()
        self._total = max(self._total, rec)
        self._done = self._total


# ---------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
