"""Values of the medical-insurance fund (医保基金) shared by its facts and rules: insurance
types, age bands, months as `YYYY-MM` text, and the checks on them. Pure; no clock reads."""

from __future__ import annotations

from datetime import date

from dangliang.domain.errors import InvalidValue

INSURANCE_TYPES = {"employee": "职工医保", "resident": "城乡居民医保"}
AGE_BANDS = {"to_60": "60周岁及以下", "over_60": "60周岁以上"}
AGE_LIMIT = 60
"""德清县基本医疗保险领导小组会议纪要〔2022〕1号: standards by age, 60周岁及以下 and 以上. A
person is in `over_60` in a month when their age in full years (周岁) on its first day is above
60 — from the month after their 61st birthday (docs/insurance.md, enrolment)."""


def age_band(birth_date: date, month: str) -> str:
    """The age band of a person in a month (`YYYY-MM`): by age in full years on its first day."""
    year, number = int(month[:4]), int(month[5:7])
    age = year - birth_date.year - ((number, 1) < (birth_date.month, birth_date.day))
    return "over_60" if age > AGE_LIMIT else "to_60"


def month_after(month: str, count: int = 1) -> str:
    """`2024-12` + 1 → `2025-01`."""
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def require_type(insurance_type: str) -> str:
    if insurance_type not in INSURANCE_TYPES:
        raise InvalidValue(
            f"险种应为 {'、'.join(INSURANCE_TYPES)}：{insurance_type!r}",
            f"insurance type must be one of {', '.join(INSURANCE_TYPES)}: {insurance_type!r}",
        )
    return insurance_type


def require_span(from_month: str, to_month: str | None) -> None:
    if to_month is not None and to_month < from_month:
        raise InvalidValue(
            f"参保止月 {to_month} 早于起月 {from_month}",
            f"enrolment ends ({to_month}) before it starts ({from_month})",
        )


def require_fen(fen: int, what_zh: str, what_en: str) -> int:
    if fen < 0:
        raise InvalidValue(f"{what_zh}不能为负数：{fen}", f"{what_en} must not be negative: {fen}")
    return fen
