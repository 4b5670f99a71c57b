"""Periods: a month or a year, their labels, last days and months."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period

periods = st.builds(
    Period, st.integers(min_value=1949, max_value=2200), st.none() | st.integers(1, 12)
)


@given(periods)
def test_a_label_reads_back_as_the_same_period(period: Period) -> None:
    assert Period.of(period.label) == period


@given(periods)
def test_the_day_after_the_last_day_starts_the_next_period(period: Period) -> None:
    after = period.last_day + timedelta(days=1)
    assert after.day == 1
    assert after.month == (1 if period.month in (None, 12) else period.month + 1)
    assert period.first_day <= period.last_day
    assert [date.fromisoformat(f"{label}-01").month for label in period.month_labels] == (
        period.months
    )


def test_months_and_last_days() -> None:
    assert Period(2024).months == list(range(1, 13))
    assert Period(2024).month_labels[0] == "2024-01" and Period(2024).month_labels[-1] == "2024-12"
    assert Period(2024, 2).last_day == date(2024, 2, 29)  # a leap year
    assert Period(2023, 2).last_day == date(2023, 2, 28)
    assert Period(2024, 12).last_day == date(2024, 12, 31) == Period(2024).last_day
    assert Period(2024, 3).month_labels == ["2024-03"] and Period(2024, 3).months == [3]


def test_parse_takes_one_of_year_or_month() -> None:
    assert Period.parse(year=None, month="2024-03") == Period(2024, 3)
    assert Period.parse(year=2024, month=None) == Period(2024)
    with pytest.raises(DomainError, match="one of"):
        Period.parse(year=2024, month="2024-03")
    with pytest.raises(DomainError, match="YYYY-MM"):
        Period.parse(year=None, month="2024-13")
