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
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from dangliang.domain.problems import Problem
from dangliang.importers.formats import FileFormat, normalise_header

__all__ = ["CSV_SUFFIXES", "JSONL_SUFFIXES", "XLSX_SUFFIXES", "TableReader", "open_table"]

Row = dict[str, "str | None"]

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx",)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")

SNIFF_BYTES = 64 * 1024
_SURROGATE = re.compile("[\udc80-\udcff]")


class TableReader:
    """A table in a file: file-level problems found at open, rows yielded on iteration.

    This base class is also what `open_table` returns for a file it cannot read at all
    (unsupported type, missing file): it has the problem and yields nothing.
    """

    def __init__(self, path: Path | str, fmt: FileFormat):
        self.path = Path(path)
        self.display_name = str(path)
        self.fmt = fmt
        self.problems: list[Problem] = []
        self.ignored_columns: list[str] = []
        self._file_problem_count = 0
        self._done = 0
        self._total = 0

    # -- public -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, Row]]:
        # Iterating again starts over: forget the row-level problems of the last pass.
        del self.problems[self._file_problem_count :]
        if self._file_problem_count:
            self._done = self._total
            return iter(())
        return self._rows()

    def progress(self) -> tuple[int, int]:
        """(done, total): bytes for CSV and JSON lines, rows for XLSX."""
        return self._done, self._total

    def close(self) -> None:
        """Release any file still held open (only needed when a caller stops iterating early)."""

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for subclasses -----------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[int, Row]]:
        return iter(())

    def _file_problem(self, row: int | None, column: str | None, zh: str, en: str) -> None:
        """A problem that makes the whole file unreadable; only recorded while opening."""
        self.problems.append(Problem(self.display_name, row, column, zh, en))
        self._file_problem_count = len(self.problems)

    def _row_problem(self, row: int | None, column: str | None, zh: str, en: str) -> None:
        self.problems.append(Problem(self.display_name, row, column, zh, en))

    def _ignore(self, header: str) -> None:
        if header not in self.ignored_columns:
            self.ignored_columns.append(header)


# ---------------------------------------------------------------------------------------
# Header → canonical columns (shared by CSV and XLSX)
# ---------------------------------------------------------------------------------------


class _Layout:
    """Where each canonical column sits in a row of `width` cells.

    `build(vals)` turns a list of exactly `width` normalised values (non-blank str or None)
    into the output dict; it may append to `vals`.
    """

    __slots__ = ("build", "width")

    def __init__(self, columns: tuple[str, ...], positions: dict[str, int], width: int):
        self.width = width
        if width == len(columns) and all(positions.get(c) == i for i, c in enumerate(columns)):
            # The usual case: the file has exactly the format's columns in its order.
            def build(vals: list[Any]) -> Row:
                return dict(zip(columns, vals, strict=False))

        else:
            # Absent columns point one past the last cell, where `build` puts a None.
            index = [positions.get(c, width) for c in columns]
            needs_sentinel = width in index
            getter: Callable[[list[Any]], tuple[Any, ...]]
            if len(index) == 1:
                i0 = index[0]

                def getter(vals: list[Any]) -> tuple[Any, ...]:
                    return (vals[i0],)

            else:
                getter = itemgetter(*index)

            if needs_sentinel:

                def build(vals: list[Any]) -> Row:
                    vals.append(None)
                    return dict(zip(columns, getter(vals), strict=False))

            else:

                def build(vals: list[Any]) -> Row:
                    return dict(zip(columns, getter(vals), strict=False))

        self.build: Callable[[list[Any]], Row] = build


def _read_header(reader: TableReader, cells: Sequence[str | None] | None) -> _Layout | None:
    """Check the header row (row 1) and return the layout, or None after recording problems."""
    fmt = reader.fmt
    if cells is None:
        reader._file_problem(None, None, "文件为空", "the file is empty")
        return None
    texts = [(c or "").strip() for c in cells]
    if not any(texts):
        reader._file_problem(1, None, "第1行没有表头", "row 1 has no header")
        return None
    header_map = fmt.header_map()
    positions: dict[str, int] = {}
    first_text: dict[str, str] = {}
    ok = True
    for i, text in enumerate(texts):
        if not text:
            continue  # a blank header cell (e.g. trailing commas): its cells are ignored
        name = header_map.get(normalise_header(text))
        if name is None:
            reader._ignore(text)
            continue
        if name in positions:
            ok = False
            reader._file_problem(
                1,
                name,
                f"列重复：'{first_text[name]}' 与 '{text}' 都对应 '{name}'",
                f"duplicate column: '{first_text[name]}' and '{text}' both mean '{name}'",
            )
            continue
        positions[name] = i
        first_text[name] = text
    for column in fmt.columns:
        if column.required and column.name not in positions:
            ok = False
            reader._file_problem(
                1,
                column.name,
                f"缺少必填列 '{column.name}'（{column.label_zh}）",
                f"missing required column '{column.name}'",
            )
    if not ok:
        return None
    return _Layout(fmt.column_names, positions, len(texts))


def _irregular_row(
    reader: TableReader, layout: _Layout, row_number: int, vals: list[str | None]
) -> Row | None:
    """The slow path for a row whose length differs from the header's (or any odd row).

    `vals` holds normalised values (non-blank str or None). Returns the dict to yield, or
    None for a blank row or a row with a problem.
    """
    if not any(vals):
        return None
    width = layout.width
    if len(vals) > width:
        extra = [i for i in range(width, len(vals)) if vals[i] is not None]
        if extra:
            reader._row_problem(
                row_number,
                None,
                f"多余的单元格：第{extra[0] + 1}列起有内容，但没有对应的表头",
                f"more cells than headers: cell {extra[0] + 1} has a value but no header",
            )
            return None
        vals = vals[:width]
        if not any(vals):
            return None
    elif len(vals) < width:
        vals = vals + [None] * (width - len(vals))
    return layout.build(vals)


# ---------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------


def _sniff_encoding(head: bytes) -> str | None:
    """utf-8-sig / utf-8 / gb18030 from the first bytes of a file, or None if neither fits."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            # final=False: a character cut in two at the end of the sample is not an error.
            codecs.getincrementaldecoder(encoding)("strict").decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    return None


def _sniff_delimiter(head: bytes, encoding: str) -> str:
    first_line = head.decode(encoding, errors="replace").split("\n", 1)[0]
    if "\t" in first_line and "," not in first_line:
        return "\t"
    return ","


class _CsvReader(TableReader):
    """CSV (comma or tab separated), UTF-8 with or without BOM, or GB18030.

    Row numbers count *records*, not physical lines: the header is row 1 and each following
    record is the next row, even when a quoted cell spans several lines. That is what a
    spreadsheet shows after opening the file (one record = one row).
    """

    def __init__(self, path: Path | str, fmt: FileFormat):
        super().__init__(path, fmt)
        self._encoding = "utf-8"
        self._delimiter = ","
        self._layout: _Layout | None = None
        self._binary: BinaryIO | None = None
        self._pending: tuple[BinaryIO, Iterator[list[str]]] | None = None
        self._open_first()

    def _open_first(self) -> None:
        try:
            binary = open(self.path, "rb")  # noqa: SIM115 - closed when iteration ends
        except OSError as exc:
            self._file_problem(None, None, f"无法打开文件：{exc}", f"cannot open the file: {exc}")
            return
        try:
            self._total = _file_size(binary)
            head = binary.read(SNIFF_BYTES)
            binary.seek(0)
            encoding = _sniff_encoding(head)
            if encoding is None:
                self._file_problem(
                    None,
                    None,
                    "无法识别文件编码，请另存为 UTF-8 或 GB18030",
                    "cannot tell the file's encoding; save it as UTF-8 or GB18030",
                )
                binary.close()
                return
            self._encoding = encoding
            self._delimiter = _sniff_delimiter(head, encoding)
            records = self._records(binary, "strict")
            try:
                header = next(records, None)
            except (UnicodeDecodeError, csv.Error) as exc:
                self._file_problem(
                    1,
                    None,
                    f"无法读取表头：{exc}",
                    f"cannot read the header: {exc}",
                )
                binary.close()
                return
            self._layout = _read_header(self, header)
            if self._layout is None:
                binary.close()
                return
            self._pending = (binary, records)  # progress() stays 0 until iteration starts
        except BaseException:
            binary.close()
            raise

    def _records(self, binary: BinaryIO, errors: str) -> Iterator[list[str]]:
        text = io.TextIOWrapper(binary, encoding=self._encoding, errors=errors, newline="")
        return csv.reader(text, delimiter=self._delimiter)

    def progress(self) -> tuple[int, int]:
        binary = self._binary
        if binary is not None and not binary.closed:
            # Bytes handed to the text decoder so far: ahead of the rows yielded by at most
            # one read chunk, which is fine for a progress bar.
            self._done = min(binary.tell(), self._total)
        return self._done, self._total

    def close(self) -> None:
        if self._pending is not None:
            self._pending[0].close()
            self._pending = None
        if self._binary is not None:
            self._binary.close()

    def _rows(self) -> Iterator[tuple[int, Row]]:
        if self._pending is not None:
            binary, records = self._pending
            self._pending = None
        else:  # iterating a second time: open again and skip the header
            binary = open(self.path, "rb")  # noqa: SIM115
            records = self._records(binary, "strict")
            next(records, None)
        self._binary = binary
        self._done = 0
        layout = self._layout
        assert layout is not None
        width = layout.width
        build = layout.build
        rec = 1  # the header was record 1
        failed: Exception | None = None
        try:
            try:
                # The hot loop: keep it small. Anything unusual goes to _irregular_row.
                for row in records:
                    rec += 1
                    if len(row) == width:
                        vals = [v.strip() or None for v in row]
                        if any(vals):
                            yield rec, build(vals)
                    else:
                        out = _irregular_row(self, layout, rec, [v.strip() or None for v in row])
                        if out is not None:
                            yield rec, out
            except (UnicodeDecodeError, csv.Error) as exc:
                failed = exc
        finally:
            if not binary.closed:
                self._done = min(binary.tell(), self._total)
            binary.close()
        if isinstance(failed, UnicodeDecodeError):
            # `rec` records were read whole; the decoder failed somewhere in the next read
            # chunk, which may start several rows before the bad bytes. Read again with the
            # bad bytes kept as surrogates to yield the good rows and name the bad row.
            yield from self._resume_after_decode_error(rec)
        elif failed is not None:
            self._row_problem(
                rec + 1,
                None,
                f"第{rec + 1}行 CSV 格式错误：{failed}，已停止读取",
                f"malformed CSV at row {rec + 1}: {failed}; stopped reading",
            )
        self._done = self._total

    def _resume_after_decode_error(self, records_read: int) -> Iterator[tuple[int, Row]]:
        layout = self._layout
        assert layout is not None
        encoding = self._encoding
        binary = open(self.path, "rb")  # noqa: SIM115
        self._binary = binary
        rec = 0
        try:
            for row in self._records(binary, "surrogateescape"):
                rec += 1
                if rec <= records_read:
                    continue
                bad = _SURROGATE.search("\n".join(row))
                if bad is not None:
                    byte = ord(bad.group()) - 0xDC00
                    self._row_problem(
                        rec,
                        None,
                        f"第{rec}行无法按 {encoding} 解码（字节 0x{byte:02x}），已停止读取；"
                        "请把文件另存为 UTF-8",
                        f"cannot decode row {rec} as {encoding} (byte 0x{byte:02x}); "
                        "stopped reading; save the file as UTF-8",
                    )
                    return
                if rec == 1:
                    continue
                out = _irregular_row(self, layout, rec, [v.strip() or None for v in row])
                if out is not None:
                    yield rec, out
        except csv.Error as exc:
            self._row_problem(
                rec + 1,
                None,
                f"第{rec + 1}行 CSV 格式错误：{exc}，已停止读取",
                f"malformed CSV at row {rec + 1}: {exc}; stopped reading",
            )
            return
        finally:
            binary.close()
        # Not reached in practice: the strict pass failed, so some row holds a bad byte.
        self._row_problem(
            records_read + 1,
            None,
            f"第{records_read + 1}行附近无法按 {encoding} 解码，已停止读取",
            f"cannot decode the file as {encoding} near row {records_read + 1}; stopped reading",
        )


def _file_size(binary: BinaryIO) -> int:
    binary.seek(0, io.SEEK_END)
    size = binary.tell()
    binary.seek(0)
    return size


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


class _XlsxReader(TableReader):
    """The first worksheet of an .xlsx workbook; row 1 is the header."""

    def __init__(self, path: Path | str, fmt: FileFormat):
        super().__init__(path, fmt)
        self._layout: _Layout | None = None
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
        self._layout = _read_header(
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
                    out = _irregular_row(self, layout, rec, vals)
                    if out is not None:
                        yield rec, out
        finally:
            self.close()
        self._total = max(self._total, rec)
        self._done = self._total


# ---------------------------------------------------------------------------------------
# JSON lines
# ---------------------------------------------------------------------------------------


class _JsonLinesReader(TableReader):
    """One JSON object per line, UTF-8 (with or without BOM); keys are headers.

    Numbers keep their exact text (1.10 stays "1.10"); true/false become "true"/"false";
    null is None. Unknown keys are listed once in `ignored_columns`. A missing key is not a
    reader problem: the column is None and the validator decides whether it was required.
    """

    def __init__(self, path: Path | str, fmt: FileFormat):
        super().__init__(path, fmt)
        self._binary: BinaryIO | None = None
        self._check_start()

    def _check_start(self) -> None:
        """File-level checks: the file opens, is not empty, and is not one big JSON array."""
        try:
            with open(self.path, "rb") as binary:
                self._total = _file_size(binary)
                for lineno, raw in enumerate(binary, 1):
                    text = raw.lstrip(codecs.BOM_UTF8).strip()
                    if not text:
                        continue
                    if text.startswith(b"["):
                        self._file_problem(
                            lineno,
                            None,
                            "文件是一个 JSON 数组，请改为每行一个 JSON 对象（JSON lines）",
                            "the file is a JSON array; write one JSON object per line (JSON lines)",
                        )
                    return
        except OSError as exc:
            self._file_problem(None, None, f"无法打开文件：{exc}", f"cannot open the file: {exc}")
            return
        self._file_problem(None, None, "文件为空", "the file is empty")

    def progress(self) -> tuple[int, int]:
        binary = self._binary
        if binary is not None and not binary.closed:
            self._done = min(binary.tell(), self._total)
        return self._done, self._total

    def close(self) -> None:
        if self._binary is not None:
            self._binary.close()

    def _rows(self) -> Iterator[tuple[int, Row]]:
        columns = self.fmt.column_names
        header_map = self.fmt.header_map()
        key_names: dict[str, str | None] = {}  # key as written → canonical name (or None)
        loads = json.loads
        bad_line = self._bad_line
        self._done = 0
        binary = open(self.path, "rb")  # noqa: SIM115
        self._binary = binary
        try:
            for lineno, raw in enumerate(binary, 1):
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad_line(
                        lineno,
                        None,
                        f"第{lineno}行不是 UTF-8 编码（字节 0x{raw[exc.start]:02x}）",
                        f"line {lineno} is not UTF-8 (byte 0x{raw[exc.start]:02x})",
                    )
                    continue
                if not line.strip():
                    continue
                try:
                    obj = loads(line, parse_float=str, parse_int=str, parse_constant=str)
                except ValueError as exc:
                    reason = getattr(exc, "msg", str(exc))
                    bad_line(
                        lineno,
                        None,
                        f"第{lineno}行不是有效的 JSON：{reason}",
                        f"line {lineno} is not valid JSON: {reason}",
                    )
                    continue
                if type(obj) is not dict:
                    bad_line(
                        lineno,
                        None,
                        f'第{lineno}行不是 JSON 对象（应为 {{"列名": 值, …}}）',
                        f'line {lineno} is not a JSON object (expected {{"column": value, …}})',
                    )
                    continue
                out: Row = dict.fromkeys(columns)
                seen: dict[str, str] = {}
                ok = True
                for key, value in obj.items():
                    if key in key_names:
                        name = key_names[key]
                    else:
                        name = key_names[key] = header_map.get(normalise_header(key))
                        if name is None:
                            self._ignore(key)
                    if name is None:
                        continue
                    if name in seen:
                        ok = False
                        bad_line(
                            lineno,
                            name,
                            f"列重复：'{seen[name]}' 与 '{key}' 都对应 '{name}'",
                            f"duplicate column: '{seen[name]}' and '{key}' both mean '{name}'",
                        )
                        continue
                    seen[name] = key
                    kind = value.__class__
                    if kind is str:
                        out[name] = value.strip() or None
                    elif value is None:
                        pass
                    elif kind is bool:
                        out[name] = "true" if value else "false"
                    else:  # dict or list
                        ok = False
                        bad_line(
                            lineno,
                            name,
                            "值必须是文本或数字，不能是嵌套的对象或数组",
                            "the value must be text or a number, not a nested object or array",
                        )
                if ok:
                    yield lineno, out
        finally:
            self._done = min(binary.tell(), self._total)
            binary.close()
        self._done = self._total

    def _bad_line(self, lineno: int, column: str | None, zh: str, en: str) -> None:
        self._row_problem(lineno, column, zh, en)


# ---------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_table(path: Path | str, fmt: FileFormat) -> TableReader:
    """Open `path` as a table of `fmt`, choosing the reader by the file's extension.

    Never raises for a bad file: look at `reader.problems` (file-level problems are there
    as soon as this returns; a reader with file-level problems yields no rows).
    """
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _CsvReader(path, fmt)
    if suffix in XLSX_SUFFIXES:
        return _XlsxReader(path, fmt)
    if suffix in JSONL_SUFFIXES:
        return _JsonLinesReader(path, fmt)
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
