"""How the workbench writes numbers, money and periods for people.

Money arrives as decimal strings (`"1234567.8"`), `Decimal`s or integer fen and is written
exactly, never through a float: `1,234,567.80 元` (English: `CNY 1,234,567.80`).
Equivalents keep the precision they were computed with, with thousands separators. Periods
are written the way a finance office writes them: `2024年3月`, `2024年第1季度`, `2024年`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def decimal_of(value: Any) -> Decimal | None:
    """A Decimal from a decimal string, Decimal or int; None for None/'' (shown as —)."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):  # never expected: money is never a float
        raise TypeError(f"money as a float: {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def grouped(value: Decimal, places: int | None = None) -> str:
    """`1234567.5` → `1,234,567.5` (with `places`, rounded half-up to that many decimals)."""
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    digits = format(abs(value), "f")
    whole, _, fraction = digits.partition(".")
    whole = f"{int(whole):,}"
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def money(value: Any, lang: str = "zh") -> str:
    """A yuan amount, exact to the fen: `1,234.50 元` / `CNY 1,234.50`; `—` when absent."""
    amount = decimal_of(value)
    if amount is None:
        return "—"
    text = grouped(amount, 2)
    return f"CNY {text}" if lang == "en" else f"{text} 元"


def fen_money(fen: int | None, lang: str = "zh") -> str:
    """Integer fen as yuan: `123456` → `1,234.56 元`."""
    return "—" if fen is None else money(Decimal(fen).scaleb(-2), lang)


def number(value: Any, places: int | None = None) -> str:
    """A count or an equivalent with thousands separators, keeping its precision."""
    found = decimal_of(value)
    return "—" if found is None else grouped(found, places)


def percent(value: Any, places: int = 1) -> str:
    """A ratio (`0.853`) as `85.3%`."""
    found = decimal_of(value)
    return "—" if found is None else f"{grouped(found * 100, places)}%"


def period_label(period: str, lang: str = "zh") -> str:
    """`2024-03` → `2024年3月`; `2024-Q1` → `2024年第1季度`; `2024` → `2024年` (English:
    `Mar 2024`, `2024 Q1`, `2024`). A ledger prefix (`perf-`, `ins-`) and a run number stay."""
    head, hash_, number_ = period.partition("#")
    prefix = ""
    for ledger in ("perf-", "ins-"):
        if head.startswith(ledger):
            prefix, head = ledger, head[len(ledger) :]
    year, _, rest = head.partition("-")
    if not year.isdigit():
        return period
    if not rest:
        text = year if lang == "en" else f"{year}年"
    elif rest.startswith("Q") and rest[1:].isdigit():
        text = f"{year} {rest}" if lang == "en" else f"{year}年第{int(rest[1:])}季度"
    elif rest.isdigit() and 1 <= int(rest) <= 12:
        text = f"{MONTHS_EN[int(rest) - 1]} {year}" if lang == "en" else f"{year}年{int(rest)}月"
    else:
        return period
    names = {"perf-": ("绩效 ", "performance "), "ins-": ("医保 ", "insurance ")}.get(prefix)
    if names:
        text = (names[1] if lang == "en" else names[0]) + text
    return f"{text} #{number_}" if hash_ else text


def date_label(value: date | datetime | str | None, lang: str = "zh") -> str:
    """A day as `2024年3月5日` / `5 Mar 2024`; a moment also with its time (UTC)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    day = value.date() if isinstance(value, datetime) else value
    text = (
        f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
        if lang == "en"
        else f"{day.year}年{day.month}月{day.day}日"
    )
    if isinstance(value, datetime):
        text += f" {value:%H:%M}"
    return text
