"""Problems found in an input file, reported all at once (errors are values).

Every problem names the file, the row as a person sees it in a spreadsheet (the header is
row 1, the first data row is row 2; for JSON lines, the line number), the column and a
bilingual reason. Readers and validators *collect* problems; they never stop at the first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, order=True, slots=True)
class Problem:
    """One thing wrong with one cell, row or file (问题)."""

    file: str
    row: int | None
    column: str | None
    message_zh: str
    message_en: str

    def __post_init__(self) -> None:
        # A bad file repeats a handful of messages ("unknown institution code 'C11'") on
        # millions of rows: one string each, not one per problem (~5x less memory).
        for name in ("file", "column", "message_zh", "message_en"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, sys.intern(value))

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(str(self.row))
        if self.column:
            where.append(self.column)
        return f"{':'.join(where)}: {self.message_zh} / {self.message_en}"

    @classmethod
    def unknown(
        cls, file: str, row: int, column: str, what_zh: str, what_en: str, value: object
    ) -> Problem:
        """`未知机构编码：'X9' / unknown institution code 'X9'` and the like."""
        return cls(file, row, column, f"未知{what_zh}：{value!r}", f"unknown {what_en} {value!r}")

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


class ProblemsFound(Exception):
    """Raised when an input is refused; carries every problem found in one pass."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=_sort_key)
        super().__init__(f"{len(self.problems)} problem(s) found")

    def report(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> Iterator[str]:
        """The report a line at a time (a refused file of a million bad rows has millions)."""
        return (str(p) for p in self.problems)


def _sort_key(p: Problem) -> tuple[str, int, str]:
    return (p.file, p.row or 0, p.column or "")
