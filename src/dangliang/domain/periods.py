"""Periods (期间): a month, for advances (按月预拨), a quarter, for the insurance fund's
advances (按季预拨), or a year, for the settlement (年终清算)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from dangliang.domain.errors import DomainError
from dangliang.domain.values import first_of_next_month

PERIOD = re.compile(r"\d{4}(-(0[1-9]|1[0-2]))?")  # a year (2024) or a month (2024-03)
QUARTER = re.compile(r"(\d{4})-?Q([1-4])")


@dataclass(frozen=True)
class Period:
    year: int
    month: int | None = None
    quarter: int | None = None  # 1–4; only when month is None

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
    def quarter_of(cls, label: str) -> Period:
        """`2024-Q1` (or `2024q1`) → that quarter; a clear error for anything else."""
        found = QUARTER.fullmatch(label.strip().upper())
        if found is None:
            raise DomainError(
                f"季度格式应为 YYYY-Qn（如 2024-Q1）：{label!r}",
                f"a quarter looks like YYYY-Qn (e.g. 2024-Q1): {label!r}",
            )
        return cls(int(found[1]), quarter=int(found[2]))

    @classmethod
    def of(cls, label: str) -> Period:
        """`2024-03` → that month; `2024-Q1` → that quarter; `2024` → that year (a label
        this class wrote)."""
        if label[5:6] == "Q":
            return cls(int(label[:4]), quarter=int(label[6]))
        return cls(int(label[:4]), int(label[5:7]) if len(label) == 7 else None)

    @property
    def is_year(self) -> bool:
        return self.month is None and self.quarter is None

    @property
    def label(self) -> str:
        if self.quarter is not None:
            return f"{self.year}-Q{self.quarter}"
        return f"{self.year}" if self.month is None else f"{self.year}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.months[0], 1)

    @property
    def last_day(self) -> date:
        """The period's last day: a payout run is computed only after it."""
        last = self.months[-1]
        if last == 12:
            return date(self.year, 12, 31)
        return first_of_next_month(self.year, last) - timedelta(days=1)

    @property
    def months(self) -> list[int]:
        """The month numbers the period covers (1–12 for a year, three for a quarter)."""
        if self.quarter is not None:
            return [3 * self.quarter - 2, 3 * self.quarter - 1, 3 * self.quarter]
        return list(range(1, 13)) if self.month is None else [self.month]

    @property
    def month_labels(self) -> list[str]:
        """`2024-01` … `2024-12` for a year; the month's own label for a month."""
        return [f"{self.year}-{m:02d}" for m in self.months]
