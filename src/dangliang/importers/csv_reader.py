"""The CSV table reader (comma or tab separated; UTF-8 with or without BOM, or GB18030), as
`readers.open_table` returns it for .csv, .txt and .tsv files.

The encoding and the delimiter are sniffed from the file's first bytes. A file that turns out
not to decode part-way through is read again with the bad bytes kept, so the good rows are
still yielded and the bad row is named.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dangliang.importers.cell_text import QUOTE, from_csv_text
from dangliang.importers.formats import FileFormat
from dangliang.importers.table_reader import (
    Layout,
    Row,
    TableReader,
    file_size,
    irregular_row,
    read_header,
)

SNIFF_BYTES = 64 * 1024
_SURROGATE = re.compile("[\udc80-\udcff]")


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


def _unquoted(vals: list[str | None]) -> list[str | None]:
    """The cells with the `'` that `cell_text.csv_text` puts before a formula-like cell (in a
    rejects file) taken off again, so such a file imports as the cells it was made of."""
    return [from_csv_text(v) if v else v for v in vals]


def _cells(row: list[str]) -> list[str | None]:
    """A record's cells: stripped, None when empty, unquoted (`_unquoted`)."""
    return _unquoted([v.strip() or None for v in row])


def cells_of(row: list[str | None]) -> list[str | None]:
    """`_cells` of a record read elsewhere (`csv_columns`), where an empty cell is None."""
    return _cells([v or "" for v in row])


class CsvReader(TableReader):
    """CSV (comma or tab separated), UTF-8 with or without BOM, or GB18030.

    Row numbers count *records*, not physical lines: the header is row 1 and each following
    record is the next row, even when a quoted cell spans several lines. That is what a
    spreadsheet shows after opening the file (one record = one row).
    """

    def __init__(self, path: Path | str, fmt: FileFormat):
        super().__init__(path, fmt)
        self._encoding = "utf-8"
        self._delimiter = ","
        self._layout: Layout | None = None
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
            self._total = file_size(binary)
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
            self._layout = read_header(self, header)
            if self._layout is None:
                binary.close()
                return
            self._pending = (binary, records)  # progress() stays 0 until iteration starts
        except BaseException:
            binary.close()
            raise

    def plain_layout(self) -> bool:
        """UTF-8, commas and the format's columns in its order, readable: what `csv_columns`
        reads a batch of columns at a time (it then checks the bytes itself)."""
        layout = self._layout
        return (
            layout is not None
            and layout.usual
            and not self._file_problem_count
            and self._encoding in ("utf-8", "utf-8-sig")
            and self._delimiter == ","
        )

    def read_share(self, lines_done: int, lines: int) -> None:
        """Progress when another reader reads the file (`csv_columns`): a share of the bytes."""
        self._done = self._total * min(lines_done, lines) // max(lines, 1)

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
                # The hot loop: keep it small. Anything unusual goes to irregular_row.
                for row in records:
                    rec += 1
                    if len(row) == width:
                        vals = [v.strip() or None for v in row]
                        if QUOTE in "".join(row):  # rare: a cell a rejects file quoted
                            vals = _unquoted(vals)
                        if any(vals):
                            yield rec, build(vals)
                    else:
                        out = irregular_row(self, layout, rec, _cells(row))
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
                out = irregular_row(self, layout, rec, _cells(row))
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
