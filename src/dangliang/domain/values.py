"""Value helpers: Decimal equivalents and quantities, dates, months. Pure; no clock reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from dangliang.domain.errors import InvalidValue

EQUIVALENT_PLACES = 4
EQUIVALENT_QUANTUM = Decimal("0.0001")


def canonical_decimal(value: Decimal) -> Decimal:
    """The same number without trailing zeros or exponent: 1.50 → 1.5, 10 → 10 (never 1E+1).

    Quantities are stored in this form so that "1", "1.0" and "1.00" in two exports of the
    same record are the same fact.
    """
    if not value.is_finite():
        raise InvalidValue("不是有限数值", f"not a finite number: {value}")
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        normal = normal.quantize(Decimal(1))
    return normal


def decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def equivalent_value(value: Decimal) -> Decimal:
    """An equivalent value (当量值): non-negative, at most 4 decimal places, kept at 4 places."""
    _require_finite(value)
    if value < 0:
        raise InvalidValue("当量值不能为负数", f"equivalent value must not be negative: {value}")
    if decimal_places(value.normalize()) > EQUIVALENT_PLACES:
        raise InvalidValue(
            f"当量值最多 {EQUIVALENT_PLACES} 位小数：{value}",
            f"equivalent value has more than {EQUIVALENT_PLACES} decimal places: {value}",
        )
    return value.quantize(EQUIVALENT_QUANTUM)


def positive_quantity(value: Decimal) -> Decimal:
    _require_finite(value)
    if value <= 0:
        raise InvalidValue(f"数量必须大于 0：{value}", f"quantity must be positive: {value}")
    if decimal_places(value.normalize()) > EQUIVALENT_PLACES:
        raise InvalidValue(
            f"数量最多 {EQUIVALENT_PLACES} 位小数：{value}",
            f"quantity has more than {EQUIVALENT_PLACES} decimal places: {value}",
        )
    return canonical_decimal(value)


LARGEST = Decimal(10) ** 9  # keeps every product and sum exact in 28-digit Decimal arithmetic


def _require_finite(value: Decimal) -> None:
    if not value.is_finite():
        raise InvalidValue(f"不是有效的数字：{value}", f"not a valid number: {value}")
    if abs(value) > LARGEST:
        raise InvalidValue(f"数值过大：{value}", f"number too large: {value}")


def require_first_of_month(
    day: date, what_zh: str = "生效日期", what_en: str = "effective date"
) -> date:
    """Values and prices take effect on the first day of a month (docs/compensation.md, step 1)."""
    if day.day != 1:
        raise InvalidValue(
            f"{what_zh}必须是某月 1 日：{day.isoformat()}",
            f"{what_en} must be the 1st of a month: {day.isoformat()}",
        )
    return day


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def require_text(text: str, what_zh: str, what_en: str) -> str:
    """A reason, reference or approver: required, surrounding spaces dropped."""
    if not text or not text.strip():
        raise InvalidValue(f"必须写明{what_zh}", f"{what_en} is required")
    return text.strip()


def first_of_next_month(year: int, month: int) -> date:
    """The 1st of the month after `year`-`month`: the exclusive end of that month."""
    return date(year + (month == 12), month % 12 + 1, 1)


def utc(moment: datetime | None) -> datetime | None:
    """A moment without an offset is read as UTC (the log's transaction times are UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment
