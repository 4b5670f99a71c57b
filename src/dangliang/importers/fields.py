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

from dangliang.importers.formats import (
    CATEGORIES,
    CORRECTION_ACTIONS,
    ESTABLISHMENT,
    FALSE_WORDS,
    INSTITUTION_KINDS,
    POSTS,
    TRUE_WORDS,
    vocabulary_lookup,
)
from dangliang.importers.problems import Problem

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
