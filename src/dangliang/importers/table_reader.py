"""The base of the streaming table readers (`readers.py`): `TableReader`, which collects the
problems it meets instead of raising, and the mapping of a header row to the format's
canonical columns shared by the CSV and XLSX readers (`csv_reader.py`, `xlsx_reader.py`).

A row is yielded as `Row`: {canonical column name: stripped text, or None when blank or
absent}, with all the format's columns in the format's order.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from dangliang.domain.problems import Problem
from dangliang.importers.formats import FileFormat, normalise_header

__all__ = ["Row", "TableReader"]

Row = dict[str, "str | None"]


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


def file_size(binary: BinaryIO) -> int:
    binary.seek(0, io.SEEK_END)
    size = binary.tell()
    binary.seek(0)
    return size


# ---------------------------------------------------------------------------------------
# Header → canonical columns (shared by CSV and XLSX)
# ---------------------------------------------------------------------------------------


class Layout:
    """Where each canonical column sits in a row of `width` cells.

    `build(vals)` turns a list of exactly `width` normalised values (non-blank str or None)
    into the output dict; it may append to `vals`.
    """

    __slots__ = ("build", "usual", "width")

    def __init__(self, columns: tuple[str, ...], positions: dict[str, int], width: int):
        self.width = width
        self.usual = width == len(columns) and all(
            positions.get(c) == i for i, c in enumerate(columns)
        )
        if self.usual:
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


def read_header(reader: TableReader, cells: Sequence[str | None] | None) -> Layout | None:
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
    return Layout(fmt.column_names, positions, len(texts))


def irregular_row(
    reader: TableReader, layout: Layout, row_number: int, vals: list[str | None]
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
