"""Periods (期间): a month, for advances (按月预拨), or a year, for the settlement (年终清算)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from dangliang.domain.errors import DomainError

PERIOD = re.compile(r"\d{4}(-(0[1-9]|1[0-2]))?")  # a year (2024) or a month (2024-03)


@dataclass(frozen=True)
class Period:
    year: int
    month: int | None = None

    @classmethod
    def parse(cls, *, year: int | None, month: str | None) -> Period:
        if (year is None) == (month is None):
            raise DomainError("请给出 --year 或 --month 之一", "give one of --year or --month")
        if month is not None:
            try:
                first = date.fromisoformat(f"{month}-01")
            except ValueError as e:
                raise DomainError(
                    f"月份格式应为 YYYY-MM：{month!r}", f"month must be YYYY-MM: {month!r}"
                ) from e
            return cls(first.year, first.month)
        assert year is not None
        return cls(year)

    @property
    def label(self) -> str:
        return f"{self.year}" if self.month is None else f"{self.year}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month or 1, 1)
