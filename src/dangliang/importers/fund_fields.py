"""Field types of the insurance fund's files (医保基金): amounts in whole fen, months as
`YYYY-MM` text, insurance types and age bands, free-text references.

Built on `fields` (its checks, messages and vocabulary matching), so a problem reads the same
in every file. Amounts: the files give yuan with at most 2 decimal places; they are read
exactly (never as a float) and kept as integer fen, as the events hold them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from dangliang.domain.values import LARGEST
from dangliang.importers.fields import (
    YUAN_QUANTUM,
    _bounded_decimal,
    _month,
    _vocabulary,
)
from dangliang.importers.formats import AGE_BAND_WORDS, INSURANCE_TYPE_WORDS

_yuan_check = _bounded_decimal(
    places=2,
    high=LARGEST,
    what_zh="金额",
    what_en="amount",
    canonical=lambda number: number.quantize(YUAN_QUANTUM),
)
_PLAIN_YUAN = re.compile(r"(\d{1,10})(?:\.(\d{0,2}))?")
_MAX_FEN = int(LARGEST) * 100


def _fen(value: Any) -> Any:
    """Yuan text → whole fen: `1200` → 120000, `12.5` → 1250, `0.01` → 1. The common
    spellings are parsed directly (a claims file has millions); anything else goes through
    the yuan check, which refuses a negative amount, more than 2 places or a non-number with
    the same messages as every other amount."""
    if value is None or isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else str(value)
    plain = _PLAIN_YUAN.fullmatch(text)
    if plain is not None:
        whole, cents = plain.groups()
        fen = int(whole) * 100 + (int(cents.ljust(2, "0")) if cents else 0)
        if fen <= _MAX_FEN:
            return fen
    return int(_yuan_check(value) * 100)


def _month_text(value: Any) -> Any:
    """A month in any spelling `fields.Month` accepts → `YYYY-MM` text (what events hold)."""
    if value is None:
        return value
    first: date = _month(value)
    return f"{first.year:04d}-{first.month:02d}"


Fen = Annotated[int, BeforeValidator(_fen)]
"""An amount given in yuan (≥ 0, at most 2 decimal places), kept as integer fen."""
MonthText = Annotated[str, BeforeValidator(_month_text)]
"""A month (`2024-03`, `2024/3`, `202403`, `2024年3月`, or its 1st day), kept as `2024-03`."""
InsuranceType = Annotated[
    str, BeforeValidator(_vocabulary(INSURANCE_TYPE_WORDS, "险种", "insurance type"))
]
"""employee (职工医保) or resident (城乡居民医保)."""
AgeBand = Annotated[str, BeforeValidator(_vocabulary(AGE_BAND_WORDS, "年龄段", "age band"))]
"""to_60 (60周岁及以下) or over_60 (60周岁以上)."""
Reference = Annotated[str, Field(min_length=1, max_length=128)]
"""A person's, claim's or provider's reference from the insurance system: any text."""
People = Annotated[int, Field(ge=0, le=100_000_000)]
"""A number of people."""


def last_day(month: str) -> date:
    """The last day of a `YYYY-MM` month."""
    year, number = int(month[:4]), int(month[5:7])
    after = date(year + (number == 12), number % 12 + 1, 1)
    return date.fromordinal(after.toordinal() - 1)
