"""Pydantic field types for input rows, and the translation of their errors into Problems.

The row models are TypedDicts validated a chunk at a time by a `TypeAdapter(list[Row])`: the
checks run in pydantic's compiled core (about 2 µs a row), and each error's location
`(index, field)` gives the row and column of the Problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from dangliang.domain.problems import Problem
from dangliang.domain.values import LARGEST, canonical_decimal, decimal_places
from dangliang.importers.formats import (
    CATEGORIES,
    CORRECTION_ACTIONS,
    ESTABLISHMENT,
    FALSE_WORDS,
    INSTITUTION_KINDS,
    OUTSIDE_ITEM_KINDS,
    POSTS,
    TRUE_WORDS,
    vocabulary_lookup,
)

_TRUE = frozenset(TRUE_WORDS)
_FALSE = frozenset(FALSE_WORDS)


def _yes_no(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PydanticCustomError(
        "dl_bool",
        "not a yes/no value: {input}",
        {
            "zh": f"应为 是/否（true/false）：{value!r}",
            "en": f"not a yes/no value: {value!r}",
            "input": value,
        },
    )


_LOOSE_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})|(\d{4})(\d{2})(\d{2})")


def _iso_date(value: Any) -> Any:
    """Also accept what spreadsheets and HIS exports write: `2024/3/5`, `2024-3-5` and
    `20240305` (→ 2024-03-05); anything else goes to pydantic's strict ISO parsing."""
    if isinstance(value, str) and not (len(value) == 10 and value[4] == value[7] == "-"):
        loose = _LOOSE_DATE.fullmatch(value.strip())
        if loose:
            year, month, day = (g for g in loose.groups() if g is not None)
            return f"{year}-{int(month):02d}-{int(day):02d}"
    return value


def _vocabulary(
    vocabulary: dict[str, tuple[str, ...]], what_zh: str, what_en: str
) -> Callable[[Any], Any]:
    lookup = vocabulary_lookup(vocabulary)
    allowed = ", ".join(vocabulary)

    def check(value: Any) -> Any:
        if value is None:
            return value
        found = lookup.get(str(value).strip().lower())
        if found is None:
            raise PydanticCustomError(
                "dl_vocabulary",
                "unknown {what}",
                {
                    "zh": f"未知{what_zh}：{value!r}",
                    "en": f"unknown {what_en} {value!r} (one of: {allowed})",
                    "what": what_en,
                },
            )
        return found

    return check


_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _bounded_decimal(
    *,
    places: int,
    high: Decimal,
    what_zh: str,
    what_en: str,
    percent: bool = False,
    canonical: Callable[[Decimal], Decimal] = canonical_decimal,
) -> Callable[[Any], Any]:
    """A number ≥ 0 and ≤ `high` with at most `places` decimal places (trailing zeros do not
    count: `87.50` is a score with one place), in its canonical form; with `percent`, `80%`
    (or `80％`) is also accepted and means 0.80. Exact: text is never read as a float."""
    top = f"{high:,}" if high >= 1000 else str(high)

    def fail(kind: str, zh: str, en: str, value: Any) -> PydanticCustomError:
        return PydanticCustomError(kind, en, {"zh": f"{zh}：{value!r}", "en": f"{en}: {value!r}"})

    def check(value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip()
        shift = 0
        if percent and text.endswith(("%", "％")):
            text, shift = text[:-1].strip(), -2
        if not _NUMBER_TEXT.fullmatch(text):
            raise fail("dl_number", "不是有效的数字", "not a valid number", value)
        number = Decimal(text).scaleb(shift)
        if number < 0:
            raise fail("dl_range", f"{what_zh}不能为负数", f"{what_en} must not be negative", value)
        if number > high:
            raise fail(
                "dl_range",
                f"{what_zh}须在 0–{top} 之间",
                f"{what_en} must be between 0 and {top}",
                value,
            )
        if decimal_places(number.normalize()) > places:
            raise fail(
                "dl_places",
                f"{what_zh}最多 {places} 位小数",
                f"{what_en} may have at most {places} decimal places",
                value,
            )
        return canonical(number)

    return check


YUAN_QUANTUM = Decimal("0.01")


def _yuan(number: Decimal) -> Decimal:
    return number.quantize(YUAN_QUANTUM)


_MONTH = re.compile(
    r"(?P<y1>\d{4})\s*[-/.]\s*(?P<m1>\d{1,2})(?:\s*[-/.]\s*(?P<d1>\d{1,2}))?"
    r"|(?P<y2>\d{4})\s*年\s*(?P<m2>\d{1,2})\s*月"
    r"|(?P<y3>\d{4})(?P<m3>\d{2})(?P<d3>\d{2})?"
)


def _month(value: Any) -> Any:
    """A month as `2024-03`, `2024/3`, `202403` or `2024年3月` → the 1st of that month; a
    date is accepted when it is the 1st (what Excel makes of a typed `2024-03`)."""
    if value is None or isinstance(value, date):
        if isinstance(value, date) and value.day != 1:
            raise _month_error(value)
        return value
    text = str(value).strip()
    found = _MONTH.fullmatch(text)
    if found is None:
        raise _month_error(value)
    g = found.groupdict()
    year = int(g["y1"] or g["y2"] or g["y3"])
    month = int(g["m1"] or g["m2"] or g["m3"])
    day = g["d1"] or g["d3"]
    if not 1 <= month <= 12 or (day is not None and int(day) != 1):
        raise _month_error(value)
    return date(year, month, 1)


def _month_error(value: Any) -> PydanticCustomError:
    return PydanticCustomError(
        "dl_month",
        "not a month",
        {
            "zh": f"月份无效，应为 YYYY-MM（如 2024-03）：{value!r}",
            "en": f"not a valid month, expected YYYY-MM (e.g. 2024-03): {value!r}",
        },
    )


_LIST_SEPARATORS = re.compile(r"[;；,，、]")


def _code_list(value: Any) -> Any:
    """`C01;C02`, `C01，C02`, `C01、C02`… → ["C01", "C02"] (order kept, repeats dropped)."""
    if value is None or isinstance(value, list):
        return value
    codes = [c.strip() for c in _LIST_SEPARATORS.split(str(value))]
    codes = list(dict.fromkeys(c for c in codes if c))
    if not codes:
        raise PydanticCustomError(
            "dl_code_list",
            "no codes",
            {
                "zh": f"未列出任何机构编码：{value!r}",
                "en": f"no institution code in {value!r}",
            },
        )
    return codes


Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
SourceId = Annotated[str, Field(min_length=1, max_length=128)]
Text = Annotated[str, Field(min_length=1, max_length=500)]
MAX_QUANTITY = Decimal(1_000_000)  # one record of a million units is a typo, not a service
Quantity = Annotated[Decimal, Field(gt=0, le=MAX_QUANTITY, decimal_places=4, allow_inf_nan=False)]
NonNegativeDecimal4 = Annotated[
    Decimal, Field(ge=0, le=MAX_QUANTITY, decimal_places=4, allow_inf_nan=False)
]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
YesNo = Annotated[bool, BeforeValidator(_yes_no)]
InstitutionKind = Annotated[
    str, BeforeValidator(_vocabulary(INSTITUTION_KINDS, "机构类型", "institution kind"))
]
Category = Annotated[str, BeforeValidator(_vocabulary(CATEGORIES, "类别", "category"))]
Post = Annotated[str, BeforeValidator(_vocabulary(POSTS, "岗位", "post"))]
Establishment = Annotated[
    str, BeforeValidator(_vocabulary(ESTABLISHMENT, "编制类型", "establishment"))
]
Action = Annotated[str, BeforeValidator(_vocabulary(CORRECTION_ACTIONS, "操作", "action"))]
Year = Annotated[int, Field(ge=1949, le=2200)]
Month = Annotated[date, BeforeValidator(_month)]
"""A month (`2024-03`, `2024/3`, `202403`, `2024年3月`), kept as the date of its 1st day."""
Yuan = Annotated[
    Decimal,
    BeforeValidator(
        _bounded_decimal(places=2, high=LARGEST, what_zh="金额", what_en="amount", canonical=_yuan)
    ),
]
"""An amount in yuan: ≥ 0, at most 2 decimal places, kept with exactly 2 (1200 → 1200.00)."""
Score = Annotated[
    Decimal,
    BeforeValidator(
        _bounded_decimal(places=2, high=Decimal(100), what_zh="考核得分", what_en="score")
    ),
]
"""An assessment score: 0–100, at most 2 decimal places."""
Ratio = Annotated[
    Decimal,
    BeforeValidator(
        _bounded_decimal(places=4, high=Decimal(1), what_zh="比例", what_en="ratio", percent=True)
    ),
]
"""A share 0–1 with at most 4 decimal places; `80%` is accepted and means 0.8."""
Coefficient = Annotated[
    Decimal,
    BeforeValidator(
        _bounded_decimal(
            places=4, high=Decimal(5), what_zh="个人考核系数", what_en="personal coefficient"
        )
    ),
]
"""A personal assessment coefficient (个人考核系数): 0–5, at most 4 decimal places."""
OutsideKind = Annotated[
    str,
    BeforeValidator(_vocabulary(OUTSIDE_ITEM_KINDS, "总量外项目", "item outside the total")),
]
"""family_doctor_fee (家庭医生签约服务费) or epidemic_allowance (公卫医生防疫补贴)."""
CodeList = Annotated[list[Code], BeforeValidator(_code_list)]
"""Codes in one cell, separated by `;` `；` `,` `，` or `、`."""

_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("必填", "required"),
    "string_too_short": ("必填", "required"),
    "string_too_long": ("内容过长", "too long"),
    "string_pattern_mismatch": (
        "编码只能包含字母、数字和 - _ .",
        "a code may contain only letters, digits and - _ .",
    ),
    "decimal_parsing": ("不是有效的数字", "not a valid number"),
    "decimal_type": ("不是有效的数字", "not a valid number"),
    "finite_number": ("不是有效的数字", "not a valid number"),
    "greater_than": ("必须大于 0", "must be greater than 0"),
    "greater_than_equal": ("不能为负数", "must not be negative"),
    "less_than_equal": ("数值过大（最大 1,000,000）", "too large (at most 1,000,000)"),
    "decimal_max_places": ("小数位最多 4 位", "at most 4 decimal places"),
    "decimal_max_digits": ("数字位数过多", "too many digits"),
    "decimal_whole_digits": ("数字位数过多", "too many digits"),
    "int_parsing": ("不是有效的整数", "not a whole number"),
    "int_from_float": ("不是有效的整数", "not a whole number"),
    "date_parsing": ("日期无效，应为 YYYY-MM-DD", "not a valid date, expected YYYY-MM-DD"),
    "date_from_datetime_parsing": (
        "日期无效，应为 YYYY-MM-DD",
        "not a valid date, expected YYYY-MM-DD",
    ),
    "date_from_datetime_inexact": ("日期不应包含时间", "a date must not carry a time of day"),
    "date_type": ("日期无效，应为 YYYY-MM-DD", "not a valid date, expected YYYY-MM-DD"),
}


def problem_from_error(file: str, row: int, column: str | None, error: Any) -> Problem:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if "zh" in ctx:
        return Problem(file, row, column, ctx["zh"], ctx["en"])
    if kind == "missing" or value is None:
        zh, en = _MESSAGES["missing"]
        return Problem(file, row, column, zh, en)
    zh, en = _MESSAGES.get(kind, ("格式错误", str(error.get("msg", kind)).lower()))
    return Problem(file, row, column, f"{zh}：{value!r}", f"{en}: {value!r}")


T = TypeVar("T")


def validate_chunk(
    adapter: TypeAdapter[list[T]],
    file: str,
    numbered: Sequence[tuple[int, dict[str, Any]]],
) -> tuple[list[tuple[int, T]], list[Problem]]:
    """Validate rows; return the valid ones (with their row numbers) and every problem."""
    rows = [r for _, r in numbered]
    try:
        valid = adapter.validate_python(rows)
        return list(zip((n for n, _ in numbered), valid, strict=True)), []
    except ValidationError as e:
        errors = e.errors()
    problems: list[Problem] = []
    bad: set[int] = set()
    for err in errors:
        loc = err["loc"]
        index = int(loc[0])
        column = str(loc[1]) if len(loc) > 1 else None
        bad.add(index)
        problems.append(problem_from_error(file, numbered[index][0], column, err))
    keep = [item for i, item in enumerate(numbered) if i not in bad]
    good = adapter.validate_python([r for _, r in keep]) if keep else []
    return list(zip((n for n, _ in keep), good, strict=True)), problems
