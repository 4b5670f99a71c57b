"""Policy parameter values (参数取值): units, values, and the checks a value must pass.

Every unit a parameter may declare (单位) and the kind of Python value it holds; a parameter's
value (`ParamValue`: Decimal, switch, text, banded table 分档, or None = off 停用), a dated
value and a parameter's whole dated history; the errors a bundle or a lookup raises; the value
in force on a date as a rule step reads and cites it (`ParameterValue`); and the value checks
shared by the bundle loader (YAML text) and by overrides (Python values). The tree of
parameters is in `dangliang.policy.parameters`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from dangliang.domain.errors import DomainError
from dangliang.domain.problems import ProblemsFound

# ---------------------------------------------------------------------------------------------
# Units (单位)

UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "CNY": "元 / yuan (a lump sum)",
        "CNY/year": "元/年 / yuan per year (e.g. a budget)",
        "CNY/EU": "元/当量 / yuan per equivalent unit",
        "CNY/head": "元/人 / yuan per person",
        "CNY/head/year": "元/人/年 / yuan per person per year",
        "EU": "当量 / equivalent units",
        "ratio": "比例（0.10 = 10%）/ ratio (0.10 = 10%)",
        "percent_points": "百分点（可为负）/ percentage points (may be negative)",
        "score": "分 / assessment score points",
        "count": "个数（整数）/ a whole number",
        "boolean": "开关 true/false / a switch",
        "text": "文字（如模式名）/ text, e.g. a mode name",
        "bands": "分档表 / a banded table: rows of named Decimal columns",
    }
)
"""Every unit a parameter may declare, with what it means (docs/policy.md lists them too)."""

ValueKind: TypeAlias = Literal["decimal", "boolean", "text", "bands"]

_KINDS: Final[Mapping[str, ValueKind]] = MappingProxyType(
    {"boolean": "boolean", "text": "text", "bands": "bands"}
)
# Only percentage-point changes may be negative; a negative price, ratio or count is a typo.
_SIGNED_UNITS: Final = frozenset({"percent_points"})


def unit_kind(unit: str) -> ValueKind:
    """What kind of Python value a parameter of this unit holds (every other unit: Decimal)."""
    return _KINDS.get(unit, "decimal")


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Band:
    """One row of a banded table (分档), e.g. `min_score 80 → coefficient 0.95`.

    Columns keep the order in which the bundle wrote them; every value is a Decimal.
    """

    columns: tuple[tuple[str, Decimal], ...]

    @classmethod
    def of(cls, row: Mapping[str, Decimal]) -> Band:
        return cls(tuple(row.items()))

    def __getitem__(self, name: str) -> Decimal:
        for column, value in self.columns:
            if column == name:
                return value
        raise KeyError(name)

    def names(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.columns)

    def as_dict(self) -> dict[str, Decimal]:
        return dict(self.columns)


ParamValue: TypeAlias = Decimal | bool | str | tuple[Band, ...] | None
"""A parameter's value: Decimal, a switch, text, a banded table, or None (= off, 停用)."""

OverrideValue: TypeAlias = ParamValue | Sequence[Band | Mapping[str, Decimal]]
"""What `with_overrides` accepts: a ParamValue, or a banded table given as a list of rows."""


@dataclass(frozen=True)
class DatedValue:
    """One value of a parameter and the day it takes effect (生效日期)."""

    start: date
    value: ParamValue
    reference: str


@dataclass(frozen=True)
class Parameter:
    """A named policy parameter and its whole dated history, oldest value first."""

    path: str
    description: str
    unit: str
    monthly: bool
    values: tuple[DatedValue, ...]
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def in_force(self, on: date) -> DatedValue | None:
        """The value whose start date is the latest one not after `on`; None before the first."""
        current = None
        for dated in self.values:
            if dated.start > on:
                break
            current = dated
        return current

    def overridden(
        self, value: ParamValue, start: date, until: date | None, reference: str
    ) -> Parameter:
        """A copy in which `value` holds from `start` (until `until`, else from then on)."""
        history = [v for v in self.values if v.start < start]
        history.append(DatedValue(start, value, reference))
        if until is not None:
            restored = self.in_force(until)
            if restored is not None:
                history.append(DatedValue(until, restored.value, restored.reference))
            history.extend(v for v in self.values if v.start > until)
        return replace(self, values=tuple(history))


@dataclass(frozen=True)
class Group:
    """A node of the tree that holds parameters or further groups (参数组)."""

    path: str
    description: str
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class PolicyError(ProblemsFound):
    """A policy bundle (or a set of overrides) refused; carries every problem found."""

    def __str__(self) -> str:
        return f"{len(self.problems)} problem(s) in policy parameters:\n{self.report()}"


class ParameterLookupError(DomainError):
    """A parameter asked for that does not exist, has no value on the date, or has another type."""


@dataclass(frozen=True)
class ParameterValue:
    """The value of one parameter in force on a date, with what a payout must cite for it."""

    path: str
    value: ParamValue
    start: date
    unit: str
    reference: str

    @property
    def is_off(self) -> bool:
        """True when the value in force is null: the parameter is switched off (停用)."""
        return self.value is None

    def as_decimal(self) -> Decimal:
        if isinstance(self.value, Decimal):
            return self.value
        raise self._wrong_type("数值", "a number")

    def optional_decimal(self) -> Decimal | None:
        """The Decimal, or None when the parameter is switched off (e.g. no growth cap)."""
        return None if self.value is None else self.as_decimal()

    def as_bool(self) -> bool:
        """The switch; a null (switched-off) switch reads as false."""
        if self.value is None:
            return False
        if isinstance(self.value, bool):
            return self.value
        raise self._wrong_type("开关", "a switch (true/false)")

    def as_text(self) -> str:
        if isinstance(self.value, str):
            return self.value
        raise self._wrong_type("文字", "text")

    def as_bands(self) -> tuple[Band, ...]:
        if isinstance(self.value, tuple):
            return self.value
        raise self._wrong_type("分档表", "a banded table")

    def cite(self) -> str:
        """`unit_price.basic_medical = 12.50 CNY/EU (from 2022-01-01; <reference>)`."""
        return (
            f"{self.path} = {show_value(self.value)} {self.unit} "
            f"(from {self.start.isoformat()}; {self.reference})"
        )

    def _wrong_type(self, what_zh: str, what_en: str) -> ParameterLookupError:
        if self.value is None:
            return ParameterLookupError(
                f"政策参数 {self.path} 自 {self.start.isoformat()} 起已停用（null），不是{what_zh}",
                f"policy parameter {self.path} is switched off (null) from "
                f"{self.start.isoformat()}; it is not {what_en}",
            )
        return ParameterLookupError(
            f"政策参数 {self.path}（单位 {self.unit}）的值不是{what_zh}：{show_value(self.value)}",
            f"policy parameter {self.path} (unit {self.unit}) is not {what_en}: "
            f"{show_value(self.value)}",
        )


def show_value(value: ParamValue) -> str:
    """A value as a person reads it: `null`, `true`, `12.50`, bands as `min_score 0, …; …`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "; ".join(", ".join(f"{k} {v}" for k, v in band.columns) for band in value)
    return str(value)


# ---------------------------------------------------------------------------------------------
# Value checks shared by the loader (YAML text) and by overrides (Python values)

Reason: TypeAlias = tuple[str, str]  # (message_zh, message_en)


def first_of_month(day: date) -> Reason:
    return (
        f"生效日期必须是某月 1 日（{day.isoformat()}）",
        f"must be the 1st of a month ({day.isoformat()})",
    )


def decimal_reasons(value: Decimal, unit: str) -> list[Reason]:
    if not value.is_finite():
        return [(f"不是有限数值：{value}", f"not a finite number: {value}")]
    reasons: list[Reason] = []
    if value < 0 and unit not in _SIGNED_UNITS:
        reasons.append((f"单位 {unit} 的值不能为负数", f"a {unit} value must not be negative"))
    if unit == "count" and value != value.to_integral_value():
        reasons.append(("个数必须是整数", "a count must be a whole number"))
    return reasons


def bands_reasons(rows: Sequence[Band]) -> list[Reason]:
    """Same columns in every row; rows strictly ascending by the one `min_*` column if any."""
    if not rows:
        return [("分档表至少要有一档", "a banded table needs at least one row")]
    names = set(rows[0].names())
    if any(set(row.names()) != names for row in rows):
        return [("各档的列名必须相同", "every row of a banded table must have the same columns")]
    lower = [name for name in rows[0].names() if name.startswith("min_")]
    if len(lower) == 1:
        bounds = [row[lower[0]] for row in rows]
        if any(a >= b for a, b in itertools.pairwise(bounds)):
            return [
                (
                    f"各档须按 {lower[0]} 从小到大排列且不重复",
                    f"rows must be in strictly ascending order of {lower[0]}",
                )
            ]
    return []


def check_python_value(value: object, unit: str) -> tuple[ParamValue, list[Reason]]:
    """An override value, checked against the parameter's unit."""
    if value is None:
        return None, []
    kind = unit_kind(unit)
    if kind == "decimal":
        if isinstance(value, Decimal):
            return value, decimal_reasons(value, unit)
        return None, [_wrong_python_type(value, unit, "Decimal")]
    if kind == "boolean":
        if isinstance(value, bool):
            return value, []
        return None, [_wrong_python_type(value, unit, "bool")]
    if kind == "text":
        if isinstance(value, str) and value.strip():
            return value, []
        return None, [_wrong_python_type(value, unit, "non-empty str")]
    if isinstance(value, Sequence) and not isinstance(value, str):
        rows: list[Band] = []
        for row in value:
            if isinstance(row, Mapping) and all(
                isinstance(k, str) and isinstance(v, Decimal) for k, v in row.items()
            ):
                row = Band.of(row)
            if not isinstance(row, Band):
                return None, [_wrong_python_type(row, unit, "Band or Mapping[str, Decimal]")]
            rows.append(row)
        reasons = [r for band in rows for _, v in band.columns for r in decimal_reasons(v, unit)]
        return tuple(rows), reasons + bands_reasons(rows)
    return None, [_wrong_python_type(value, unit, "a sequence of Band")]


def _wrong_python_type(value: object, unit: str, expected: str) -> Reason:
    got = type(value).__name__
    return (
        f"单位 {unit} 需要 {expected}，得到 {got}（金额与比率不用 float）",
        f"unit {unit} needs {expected}, got {got} (never float for amounts and rates)",
    )
