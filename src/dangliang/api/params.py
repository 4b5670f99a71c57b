"""Query parameters shared by the routes, checked at the boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query

from dangliang.api.models import PERIOD_PATTERN
from dangliang.api.refusals import ApiError
from dangliang.domain.periods import Period
from dangliang.domain.values import utc

MAX_POSITION = 2**62  # notification ids are 64-bit; beyond this is never a position

PeriodQuery = Annotated[
    str,
    Query(
        pattern=PERIOD_PATTERN,
        description="A month `YYYY-MM` (advances) or a year `YYYY` (settlement).",
        examples=["2024"],
    ),
]
AsOf = Annotated[
    datetime | None,
    Query(description="As the log stood at this moment (ISO 8601; UTC without an offset)."),
]
Position = Annotated[
    int | None,
    Query(ge=0, le=MAX_POSITION, description="As the log stood at this notification id."),
]
InstitutionQuery = Annotated[
    str | None, Query(max_length=64, description="Only this institution (机构编码).")
]


def parse_period(text: str) -> Period:
    """`2024` or `2024-03` (already matched by the pattern) as a Period, within 1949–2200."""
    year, _, month = text.partition("-")
    if not 1949 <= int(year) <= 2200:
        raise ApiError(422, f"年份超出范围：{year}", f"year out of range (1949–2200): {year}")
    return Period.parse(year=None if month else int(year), month=text if month else None)


def moment(as_of: datetime | None) -> datetime | None:
    """`as_of` in UTC; a moment the log cannot have (before 1970, after 9000) is refused."""
    found = utc(as_of)
    if found is not None and not 1970 <= found.year <= 9000:
        raise ApiError(422, f"时间超出范围：{as_of}", f"as_of out of range: {as_of}")
    return found
