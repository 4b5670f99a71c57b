"""Periods (期间): a month, for advances (按月预拨), or a year, for the settlement (年终清算)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from dangliang.domain.errors import DomainError
from dangliang.domain.values import first_of_next_month

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

    @classmethod
    def of(cls, label: str) -> Period:
        """`2024-03` → that month; `2024` → that year (a label this class wrote)."""
        return cls(int(label[:4]), int(label[5:7]) if len(label) == 7 else None)

    @property
    def label(self) -> str:
        return f"{self.year}" if self.month is None else f"{self.year}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month or 1, 1)

    @property
    def last_day(self) -> date:
        """The period's last day: a payout run is computed only after it."""
        if self.month is None:
            return date(self.year, 12, 31)
        return first_of_next_month(self.year, self.month) - timedelta(days=1)

    @property
    def months(self) -> list[int]:
        """The month numbers the period covers (1–12 for a year)."""
        return list(range(1, 13)) if self.month is None else [self.month]

    @property
    def month_labels(self) -> list[str]:
        """`2024-01` … `2024-12` for a year; the month's own label for a month."""
        return [f"{self.year}-{m:02d}" for m in self.months]
