"""Plain CSV files read a batch of columns at a time (polars): the import's fast read.

`csv_reader.CsvReader` reads a record at a time with Python's `csv` module and builds a dict
per row: exact for every file a county sends (encodings, quoting, blank rows, ragged rows, a
header in any order), and about 6 µs a row. Most files are plain: UTF-8, commas, the format's
columns in the format's order, no quotes, no blank lines. For those, polars parses a batch of
rows straight into columns, and the row numbers are simply the record's position (header = row
1), as the `csv` reader counts them.

Whether a file is plain is decided before any row is used: one pass over its bytes (valid
UTF-8; no `"`; no blank line; a carriage return only before a line feed; as many commas as a
line of the format's width has, times the lines). A ragged line that passes that count (one line
too long, another too short) makes polars stop with an error part-way: `NotPlain` is raised
then, and the importer reads the file again row by row. Rows whose cells are not already as the
`csv` reader would give them (spaces around a cell, a leading `'` of a rejects file) are handed
to the row-by-row checks as the `csv` reader's dicts.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dangliang.importers.cell_text import QUOTE
from dangliang.importers.csv_reader import CsvReader, cells_of
from dangliang.importers.table_reader import TableReader

if TYPE_CHECKING:
    import polars as pl

# polars is imported where it is used: only an import of a plain CSV file needs it, and
# every other command starts ~0.25 s sooner without it.

BLOCK = 1 << 20


class NotPlain(Exception):
    """The file turned out not to be plain part-way: read it row by row instead."""


def column_frames(reader: TableReader, rows_per_frame: int) -> Iterator[pl.DataFrame] | None:
    """Frames of `row` (the row number) and the format's columns as text (null when empty,
    cells as in the file), or None when the file is not plain (module docstring)."""
    if not isinstance(reader, CsvReader) or not reader.plain_layout():
        return None
    columns = reader.fmt.column_names
    lines = _plain_lines(reader, len(columns))
    if lines is None:
        return None
    return _frames(reader, tuple(columns), rows_per_frame, lines)


def rows_of(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a frame as the `csv` reader yields them: numbered dicts of stripped cells."""
    return [
        (row[0], dict(zip(columns, cells_of(list(row[1:])), strict=True)))
        for row in frame.select("row", *columns).iter_rows()
    ]


def as_read(columns: tuple[str, ...]) -> pl.Expr:
    """Whether a row's cells are exactly what the `csv` reader gives (no spaces to strip, no
    blank-but-not-empty cell, no leading `'`)."""
    import polars as pl

    c = pl.col
    return pl.all_horizontal(
        *(
            c(name).is_null()
            | ((c(name).str.strip_chars() == c(name)) & ~c(name).str.starts_with(QUOTE))
            for name in columns
        )
    ).fill_null(False)


def _frames(
    reader: CsvReader, columns: tuple[str, ...], size: int, lines: int
) -> Iterator[pl.DataFrame]:
    """Frames of about `size` rows, each parsed from its own block of whole lines, so memory
    stays flat whatever the file's size (polars' own streaming reader reads ahead)."""
    import polars as pl

    schema = dict.fromkeys(columns, pl.String)
    first = 2  # the header is row 1
    with open(reader.path, "rb") as f:
        f.readline()  # the header (checked by the csv reader)
        block_bytes = max(size * 64, 1 << 16)  # ~64 bytes a row
        while block := f.read(block_bytes):
            if not block.endswith(b"\n"):
                block += f.readline()
            try:
                frame = pl.read_csv(
                    block,
                    has_header=False,
                    new_columns=list(columns),
                    schema=schema,
                    quote_char=None,
                )
            except pl.exceptions.PolarsError as e:
                raise NotPlain(str(e)) from e
            numbered = frame.with_row_index("row", offset=first)
            first += frame.height
            reader.read_share(first - 1, lines)
            yield numbered.with_columns(pl.col("row").cast(pl.Int64))


def _plain_lines(reader: CsvReader, width: int) -> int | None:
    """The file's line count if it is plain (module docstring), else None."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    commas = lines = 0
    last = b"\n"  # as if a line had just ended
    with open(reader.path, "rb") as f:
        if f.read(3) != codecs.BOM_UTF8:
            f.seek(0)
        while block := f.read(BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                return None
            joined = last + block
            if b'"' in block or b"\n\n" in joined or b"\n\r\n" in joined:
                return None
            # a carriage return only before a line feed (one ending the block: next block)
            lone = joined.count(b"\r") - joined.count(b"\r\n") - joined.endswith(b"\r")
            if lone:
                return None
            commas += block.count(b",")
            lines += block.count(b"\n")
            last = block[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    if last == b"\r":
        return None
    if last != b"\n":
        lines += 1  # the last line has no line feed
    return lines if lines > 1 and commas == (width - 1) * lines else None
