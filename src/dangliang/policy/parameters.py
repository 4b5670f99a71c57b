"""Dated policy parameters (政策参数), loaded from a YAML bundle and validated.

The idea is OpenFisca's: policy values are *data*, a tree of named parameters in which every
value carries the date it takes effect and the document and clause it comes from. A rule step
asks for `unit_price.basic_medical` on a date and gets the value in force then, together with
its start date, unit and reference, so that every computed number can cite its parameters
(DOMAIN.md §7). A reform (what-if) is a modified copy of the tree; the baseline is untouched.

Unlike OpenFisca, amounts are written as strings and read as `Decimal` (a YAML float is
refused), every value must name its unit and reference, and a bundle is refused with *all* of
its problems at once, each with file, line and key path (beancount style, see
`dangliang.importers.problems`). The YAML format is described in docs/policy.md.

Pure: nothing here reads a clock; `load_bundle` and `load_builtin_bundle` read one file.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

import yaml

from dangliang.domain.errors import DomainError
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.domain.values import canonical_decimal

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
# The tree


CANONICAL_FORMAT: Final = "dangliang.policy/1"


class ParameterTree:
    """A validated policy bundle: parameters by dotted path, each with its dated values.

    Immutable; `with_overrides` returns a modified copy (a reform / what-if).
    """

    __slots__ = ("_digest", "_groups", "_parameters", "source")

    def __init__(
        self, parameters: Mapping[str, Parameter], groups: Mapping[str, Group], source: str
    ) -> None:
        self._parameters: Mapping[str, Parameter] = MappingProxyType(dict(parameters))
        self._groups: Mapping[str, Group] = MappingProxyType(dict(groups))
        self.source = source
        self._digest: str | None = None

    def __repr__(self) -> str:
        return f"<ParameterTree {self.source}: {len(self)} parameters, {self.digest()[:12]}>"

    def __contains__(self, path: object) -> bool:
        return path in self._parameters

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._parameters))

    def __len__(self) -> int:
        return len(self._parameters)

    @property
    def description(self) -> str:
        """The bundle's own description (the root group's)."""
        root = self._groups.get("")
        return root.description if root else ""

    @property
    def metadata(self) -> Mapping[str, str]:
        root = self._groups.get("")
        return root.metadata if root else MappingProxyType({})

    @property
    def groups(self) -> Mapping[str, Group]:
        return self._groups

    def parameter(self, path: str) -> Parameter:
        """The parameter with its whole history; a clear error for a group or unknown path."""
        found = self._parameters.get(path)
        if found is not None:
            return found
        if path in self._groups:
            inside = sorted(p for p in self._parameters if p.startswith(f"{path}."))
            raise ParameterLookupError(
                f"{path!r} 是参数组，不是参数；其中有：{', '.join(inside)}",
                f"{path!r} is a group, not a parameter; it holds: {', '.join(inside)}",
            )
        near = difflib.get_close_matches(path, list(self._parameters), n=3)
        hint_zh = f"；是否指：{', '.join(near)}" if near else ""
        hint_en = f"; did you mean: {', '.join(near)}" if near else ""
        raise ParameterLookupError(
            f"{self.source} 中没有政策参数 {path!r}{hint_zh}",
            f"no policy parameter {path!r} in {self.source}{hint_en}",
        )

    def get(self, path: str, on: date) -> ParameterValue:
        """The value of `path` in force on `on` (a null value is returned: it means "off")."""
        param = self.parameter(path)
        dated = param.in_force(on)
        if dated is None:
            first = param.values[0].start.isoformat()
            raise ParameterLookupError(
                f"政策参数 {path} 在 {on.isoformat()} 尚无生效的值（最早自 {first} 起）",
                f"policy parameter {path} has no value in force on {on.isoformat()} "
                f"(its first value starts on {first})",
            )
        return ParameterValue(path, dated.value, dated.start, param.unit, dated.reference)

    def at(self, on: date) -> ParameterSnapshot:
        """A read-only view of the parameters in force on one date."""
        return ParameterSnapshot(self, on)

    def canonical_json(self) -> str:
        """Every parameter's unit, monthly flag and dated values (with references) as JSON.

        Keys sorted, decimals in canonical form ("12.50" and "12.5" are the same number), no
        descriptions or metadata: documentation edits do not change what a payout used.
        """
        body = {
            path: {
                "unit": param.unit,
                "monthly": param.monthly,
                "values": [
                    {
                        "start": v.start.isoformat(),
                        "value": _canonical_value(v.value),
                        "reference": v.reference,
                    }
                    for v in param.values
                ],
            }
            for path, param in self._parameters.items()
        }
        document = {"format": CANONICAL_FORMAT, "parameters": body}
        return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """sha256 (hex) of `canonical_json()`: names exactly the parameters a run used."""
        if self._digest is None:
            self._digest = hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()
        return self._digest

    def with_overrides(
        self,
        overrides: Mapping[str, OverrideValue],
        *,
        on: date,
        reference: str,
        until: date | None = None,
    ) -> ParameterTree:
        """A reform (改革方案试算): a copy in which each override holds from `on`.

        Without `until` the override replaces the parameter's values from `on` onwards (later
        dated values are dropped); with `until` it holds for [on, until) and the baseline value
        in force on `until` resumes then. Values are checked as when loading (Decimal for
        numeric units, never float). The baseline tree is not changed.
        """
        where = f"{self.source} (overrides)"
        problems: list[Problem] = []

        def refuse(path: str | None, zh: str, en: str) -> None:
            problems.append(Problem(where, None, path, zh, en))

        if not reference.strip():
            refuse(None, "覆盖必须写明依据（reference）", "an override needs a reference")
        if until is not None and until <= on:
            refuse(None, "until 必须晚于 on", "until must be after on")
        changed = dict(self._parameters)
        for path, value in overrides.items():
            param = self._parameters.get(path)
            if param is None:
                refuse(path, f"未知政策参数：{path!r}", f"unknown policy parameter {path!r}")
                continue
            checked, reasons = _check_python_value(value, param.unit)
            for zh, en in reasons:
                refuse(path, zh, en)
            for day in (on, until):
                if param.monthly and day is not None and day.day != 1:
                    refuse(path, *_first_of_month(day))
            if until is not None and param.in_force(until) is None:
                refuse(
                    path,
                    f"until {until.isoformat()} 早于该参数最早的生效日期",
                    f"until {until.isoformat()} is before the parameter's first value",
                )
            if not reasons:
                changed[path] = param.overridden(checked, on, until, reference.strip())
        if problems:
            raise PolicyError(problems)
        return ParameterTree(changed, self._groups, self.source)

    def with_value(
        self, path: str, start: date, value: ParamValue, reference: str
    ) -> ParameterTree:
        """A copy with one more dated value (a recorded change, 参数调整): `value` holds from
        `start` until the parameter's next later start date; a value with the same start is
        replaced. Unlike `with_overrides`, later dated values are kept."""
        param = self.parameter(path)
        if param.monthly and start.day != 1:
            zh, en = _first_of_month(start)
            raise ParameterLookupError(f"{path}：{zh}", f"{path}: {en}")
        history = [v for v in param.values if v.start != start]
        history.append(DatedValue(start, value, reference))
        history.sort(key=lambda v: v.start)
        changed = dict(self._parameters)
        changed[path] = replace(param, values=tuple(history))
        return ParameterTree(changed, self._groups, self.source)


class ParameterSnapshot:
    """The parameters in force on one date (某日生效的参数); read-only."""

    __slots__ = ("_tree", "on")

    def __init__(self, tree: ParameterTree, on: date) -> None:
        self._tree = tree
        self.on = on

    def __repr__(self) -> str:
        return f"<ParameterSnapshot {self._tree.source} on {self.on.isoformat()}>"

    def __getitem__(self, path: str) -> ParameterValue:
        return self._tree.get(path, self.on)

    def __contains__(self, path: object) -> bool:
        return (
            isinstance(path, str)
            and path in self._tree
            and self._tree.parameter(path).in_force(self.on) is not None
        )

    def __iter__(self) -> Iterator[str]:
        """Paths of the parameters that have a value (possibly null) in force on the date."""
        return (path for path in self._tree if path in self)

    @property
    def tree(self) -> ParameterTree:
        return self._tree

    def values(self) -> dict[str, ParameterValue]:
        return {path: self[path] for path in self}


def _canonical_value(value: ParamValue) -> object:
    if isinstance(value, Decimal):
        return str(canonical_decimal(value))
    if isinstance(value, tuple):
        return [{name: str(canonical_decimal(v)) for name, v in band.columns} for band in value]
    return value


# ---------------------------------------------------------------------------------------------
# Value checks shared by the loader (YAML text) and by overrides (Python values)

Reason: TypeAlias = tuple[str, str]  # (message_zh, message_en)


def _first_of_month(day: date) -> Reason:
    return (
        f"生效日期必须是某月 1 日（{day.isoformat()}）",
        f"must be the 1st of a month ({day.isoformat()})",
    )


def _decimal_reasons(value: Decimal, unit: str) -> list[Reason]:
    if not value.is_finite():
        return [(f"不是有限数值：{value}", f"not a finite number: {value}")]
    reasons: list[Reason] = []
    if value < 0 and unit not in _SIGNED_UNITS:
        reasons.append((f"单位 {unit} 的值不能为负数", f"a {unit} value must not be negative"))
    if unit == "count" and value != value.to_integral_value():
        reasons.append(("个数必须是整数", "a count must be a whole number"))
    return reasons


def _bands_reasons(rows: Sequence[Band]) -> list[Reason]:
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


def _check_python_value(value: object, unit: str) -> tuple[ParamValue, list[Reason]]:
    """An override value, checked against the parameter's unit."""
    if value is None:
        return None, []
    kind = unit_kind(unit)
    if kind == "decimal":
        if isinstance(value, Decimal):
            return value, _decimal_reasons(value, unit)
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
        reasons = [r for band in rows for _, v in band.columns for r in _decimal_reasons(v, unit)]
        return tuple(rows), reasons + _bands_reasons(rows)
    return None, [_wrong_python_type(value, unit, "a sequence of Band")]


def _wrong_python_type(value: object, unit: str, expected: str) -> Reason:
    got = type(value).__name__
    return (
        f"单位 {unit} 需要 {expected}，得到 {got}（金额与比率不用 float）",
        f"unit {unit} needs {expected}, got {got} (never float for amounts and rates)",
    )


# ---------------------------------------------------------------------------------------------
# YAML reading: a loader that keeps line numbers, records duplicate keys and never makes floats


@dataclass(frozen=True)
class _YamlNumber:
    """A plain YAML number (int or float), kept as written: amounts must be quoted strings."""

    text: str


@dataclass(frozen=True)
class _Unreadable:
    """A scalar YAML could not build, e.g. `2022-02-30` (shaped like a date, but is not one)."""

    text: str
    reason: str


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of itself, of each key and of duplicate keys."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int, int]] = []


_BOOL_TAG: Final = "tag:yaml.org,2002:bool"


class _PolicyLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that builds `_Map`s, keeps numbers as `_YamlNumber` and reads only
    true/false as booleans (YAML 1.1 would also read yes/no/on/off)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> _Map:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        result = _Map(node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = self._construct_safely(key_node)
            try:
                hash(key)
            except TypeError:
                key = _Unreadable("?", "a mapping key must be a plain name")
            line = key_node.start_mark.line + 1
            if key in result:
                # keep the first value; the walker reports the repetition with its path
                result.duplicates.append((key, result.key_lines[key], line))
                continue
            result[key] = self._construct_safely(value_node)
            result.key_lines[key] = line
        return result

    def _construct_safely(self, node: Any) -> Any:
        try:
            return self.construct_object(node, deep=True)
        except ValueError as e:
            self.recursive_objects.pop(node, None)
            return _Unreadable(str(node.value), str(e))


def _construct_map(loader: _PolicyLoader, node: Any) -> _Map:
    return loader.construct_mapping(node)


def _construct_number(loader: _PolicyLoader, node: Any) -> _YamlNumber:
    return _YamlNumber(str(node.value))


def _construct_merge_key(loader: _PolicyLoader, node: Any) -> str:
    # merge keys are not supported: keep `<<` as a plain key, reported as an unknown name
    return str(node.value)


_PolicyLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_PolicyLoader.add_constructor("tag:yaml.org,2002:int", _construct_number)
_PolicyLoader.add_constructor("tag:yaml.org,2002:float", _construct_number)
_PolicyLoader.add_constructor("tag:yaml.org,2002:merge", _construct_merge_key)
_PolicyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PolicyLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _parse(text: str, source: str) -> tuple[Any, list[Problem]]:
    loader = _PolicyLoader(text)
    try:
        return loader.get_single_data(), []
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = e.problem or e.context or "?"
        return None, [Problem(source, line, None, f"YAML 格式错误：{what}", f"YAML error: {what}")]
    except (yaml.YAMLError, ValueError) as e:
        return None, [Problem(source, None, None, f"YAML 格式错误：{e}", f"YAML error: {e}")]
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------------------------
# Walking the YAML tree into parameters, collecting every problem

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DECIMAL_TEXT = re.compile(r"^[+-]?[0-9]+(?:\.[0-9]+)?$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
PARAMETER_KEYS: Final = ("description", "unit", "values", "monthly", "metadata")
GROUP_KEYS: Final = ("description", "metadata")
ENTRY_KEYS: Final = ("value", "reference")
_MARKS_PARAMETER: Final = ("values", "unit", "monthly")
_KEY_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "description": "说明（description）",
        "unit": "单位（unit）",
        "values": "带生效日期的取值（values）",
        "reference": "依据（reference：政策文件及条款）",
        "value": "取值（value；停用写 null）",
    }
)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _key_text(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, date):
        return key.isoformat()
    if isinstance(key, _YamlNumber | _Unreadable):
        return key.text
    return str(key)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.parameters: dict[str, Parameter] = {}
        self.groups: dict[str, Group] = {}

    def problem(self, line: int | None, path: str, zh: str, en: str) -> None:
        self.problems.append(Problem(self.source, line, path or None, zh, en))

    def root(self, data: Any) -> None:
        if data is None:
            self.problem(1, "", "政策包为空", "the bundle is empty")
        elif not isinstance(data, _Map):
            self.problem(
                1, "", "政策包应为参数与参数组的映射", "a bundle is a mapping of parameters"
            )
        else:
            self.group(data, "", 1)

    def mapping(self, m: _Map, path: str, allowed: Sequence[str] | None = None) -> None:
        """Report duplicate keys and (if `allowed` is given) keys not in it."""
        for key, first, second in m.duplicates:
            self.problem(
                second,
                _join(path, _key_text(key)),
                f"重复的键（第 {first} 行已有）",
                f"duplicate key (already on line {first})",
            )
        if allowed is None:
            return
        for key in m:
            if key not in allowed:
                self.problem(
                    m.key_lines[key],
                    _join(path, _key_text(key)),
                    f"未知的键 {_key_text(key)!r}；此处只能有：{', '.join(allowed)}",
                    f"unknown key {_key_text(key)!r}; allowed here: {', '.join(allowed)}",
                )

    def group(self, m: _Map, path: str, line: int) -> None:
        self.mapping(m, path)
        description = self.text(m, "description", path, line, required=False)
        metadata = self.metadata(m, path)
        children = 0
        for key, value in m.items():
            if key in GROUP_KEYS:
                continue
            key_line = m.key_lines[key]
            child = _join(path, _key_text(key))
            if not (isinstance(key, str) and _NAME.match(key)):
                self.problem(
                    key_line,
                    child,
                    "名称只能用小写英文字母、数字和下划线，并以字母开头",
                    "a name is lower-case letters, digits and underscores, starting with a letter",
                )
                continue
            children += 1
            if not isinstance(value, _Map):
                self.problem(
                    key_line,
                    child,
                    "应为参数（含 description、unit、values）或参数组，不能直接写值",
                    "expected a parameter (with description, unit, values) or a group, "
                    "not a bare value",
                )
            elif any(k in value for k in _MARKS_PARAMETER):
                self.parameter(value, child, key_line)
            else:
                self.group(value, child, key_line)
        if children == 0:
            self.problem(line, path, "参数组为空", "empty group: no parameters in it")
        self.groups[path] = Group(path, description or "", metadata)

    def parameter(self, m: _Map, path: str, line: int) -> None:
        self.mapping(m, path, PARAMETER_KEYS)
        description = self.text(m, "description", path, line, required=True)
        unit = self.unit(m, path, line)
        monthly = self.monthly(m, path)
        metadata = self.metadata(m, path)
        values = self.dated_values(m, path, line, unit, monthly)
        if description and unit and values:
            self.parameters[path] = Parameter(path, description, unit, monthly, values, metadata)

    def text(self, m: _Map, key: str, path: str, line: int, *, required: bool) -> str | None:
        if key not in m:
            if required:
                name = _KEY_NAMES.get(key, key)
                self.problem(line, _join(path, key), f"缺少{name}", f"missing {key}")
            return None
        value = m[key]
        if not isinstance(value, str) or not value.strip():
            self.problem(
                m.key_lines[key],
                _join(path, key),
                f"{key} 应为非空文字",
                f"{key} must be non-empty text",
            )
            return None
        return value.strip()

    def unit(self, m: _Map, path: str, line: int) -> str | None:
        unit = self.text(m, "unit", path, line, required=True)
        if unit is not None and unit not in UNITS:
            self.problem(
                m.key_lines["unit"],
                _join(path, "unit"),
                f"未知单位 {unit!r}；可用：{', '.join(UNITS)}",
                f"unknown unit {unit!r}; allowed: {', '.join(UNITS)}",
            )
            return None
        return unit

    def monthly(self, m: _Map, path: str) -> bool:
        value = m.get("monthly", False)
        if not isinstance(value, bool):
            self.problem(
                m.key_lines["monthly"],
                _join(path, "monthly"),
                "monthly 应为 true 或 false",
                "monthly must be true or false",
            )
            return False
        return value

    def metadata(self, m: _Map, path: str) -> Mapping[str, str]:
        if "metadata" not in m:
            return MappingProxyType({})
        value, where = m["metadata"], _join(path, "metadata")
        if not isinstance(value, _Map) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            self.problem(
                m.key_lines["metadata"],
                where,
                "metadata 应为「名称: 文字」的映射",
                "metadata must be a mapping of names to text",
            )
            return MappingProxyType({})
        self.mapping(value, where)
        return MappingProxyType(dict(value))

    def dated_values(
        self, m: _Map, path: str, line: int, unit: str | None, monthly: bool
    ) -> tuple[DatedValue, ...] | None:
        if "values" not in m:
            self.problem(
                line, _join(path, "values"), "缺少带生效日期的取值（values）", "missing values"
            )
            return None
        raw, where = m["values"], _join(path, "values")
        if not isinstance(raw, _Map) or not raw:
            self.problem(
                m.key_lines["values"],
                where,
                "values 应为「生效日期: {value, reference}」的映射，至少一项",
                "values must map start dates to {value, reference}, at least one",
            )
            return None
        self.mapping(raw, where)
        found: dict[date, DatedValue] = {}
        lines: dict[date, int] = {}
        complete = True
        for key, entry in raw.items():
            key_line = raw.key_lines[key]
            entry_path = _join(where, _key_text(key))
            start = self.start_date(key, key_line, entry_path, monthly)
            dated = self.entry(entry, key_line, entry_path, unit, start)
            if start is not None and start in lines:
                first = lines[start]
                self.problem(
                    key_line,
                    entry_path,
                    f"同一生效日期写了两次（第 {first} 行已有）",
                    f"the same start date is given twice (already on line {first})",
                )
            elif start is not None:
                lines[start] = key_line
            if dated is not None and start not in found:
                found[dated.start] = dated
            else:
                complete = False
        if not complete:
            return None
        return tuple(sorted(found.values(), key=lambda v: v.start))

    def start_date(self, key: object, line: int, path: str, monthly: bool) -> date | None:
        start: date | None = None
        if isinstance(key, date) and not isinstance(key, datetime):
            start = key
        elif isinstance(key, str) and _ISO_DATE.match(key):
            try:
                start = date.fromisoformat(key)
            except ValueError:
                start = None
        if start is None:
            self.problem(
                line,
                path,
                f"生效日期应为有效日期 YYYY-MM-DD：{_key_text(key)!r}",
                f"a start date must be a valid date YYYY-MM-DD: {_key_text(key)!r}",
            )
        elif monthly and start.day != 1:
            self.problem(
                line, path, "生效日期必须是某月 1 日", "must be the 1st of a month (monthly: true)"
            )
            return None
        return start

    def entry(
        self, entry: Any, line: int, path: str, unit: str | None, start: date | None
    ) -> DatedValue | None:
        if not isinstance(entry, _Map):
            self.problem(
                line,
                path,
                '每个生效日期下写 value 与 reference，如 {value: "12.50", reference: "…"}',
                'each start date needs value and reference, e.g. {value: "12.50", reference: …}',
            )
            return None
        self.mapping(entry, path, ENTRY_KEYS)
        reference = self.text(entry, "reference", path, line, required=True)
        if "value" not in entry:
            self.problem(line, _join(path, "value"), f"缺少{_KEY_NAMES['value']}", "missing value")
            return None
        ok, value = self.value(entry["value"], entry.key_lines["value"], _join(path, "value"), unit)
        if ok and reference is not None and start is not None:
            return DatedValue(start, value, reference)
        return None

    def value(self, raw: Any, line: int, path: str, unit: str | None) -> tuple[bool, ParamValue]:
        """Read a YAML value for `unit`; (False, None) when a problem was reported."""
        if raw is None:
            return True, None  # null: switched off from this date
        if isinstance(raw, _Unreadable):
            self.problem(line, path, f"无法读取：{raw.reason}", f"cannot read: {raw.reason}")
            return False, None
        if unit is None:
            return False, None  # the unit problem is already reported
        kind = unit_kind(unit)
        if kind == "decimal":
            number = self.decimal(raw, line, path, unit)
            return number is not None, number
        if kind == "boolean":
            if isinstance(raw, bool):
                return True, raw
            self.problem(line, path, "开关应写 true 或 false", "a switch is written true or false")
            return False, None
        if kind == "text":
            if isinstance(raw, str) and raw.strip():
                return True, raw.strip()
            self.problem(line, path, "应为非空文字", "expected non-empty text")
            return False, None
        bands = self.bands(raw, line, path, unit)
        return bands is not None, bands

    def decimal(self, raw: Any, line: int, path: str, unit: str) -> Decimal | None:
        if isinstance(raw, _YamlNumber):
            self.problem(
                line,
                path,
                f'金额、比率等数值请写成字符串（加引号）："{raw.text}"，而不是 {raw.text}',
                f'write amounts as strings (in quotes): "{raw.text}", not {raw.text}',
            )
            return None
        if not (isinstance(raw, str) and _DECIMAL_TEXT.match(raw.strip())):
            self.problem(
                line,
                path,
                f'应为写成字符串的数值，如 "12.50"：{_key_text(raw)!r}',
                f'expected a number written as a string, e.g. "12.50": {_key_text(raw)!r}',
            )
            return None
        number = Decimal(raw.strip())
        reasons = _decimal_reasons(number, unit)
        for zh, en in reasons:
            self.problem(line, path, zh, en)
        return None if reasons else number

    def bands(self, raw: Any, line: int, path: str, unit: str) -> tuple[Band, ...] | None:
        if not isinstance(raw, list) or not raw:
            self.problem(
                line,
                path,
                '分档表应为列表，每档如 {min_score: "60", coefficient: "0.80"}',
                'a banded table is a list of rows like {min_score: "60", coefficient: "0.80"}',
            )
            return None
        rows: list[Band] = []
        for index, row in enumerate(raw):
            row_path = f"{path}[{index}]"
            if not isinstance(row, _Map) or not row:
                self.problem(
                    line, row_path, "每档应为「列名: 数值」映射", "a row maps names to numbers"
                )
                continue
            self.mapping(row, row_path)
            columns: list[tuple[str, Decimal]] = []
            for key, cell in row.items():
                cell_path = _join(row_path, _key_text(key))
                if not (isinstance(key, str) and _NAME.match(key)):
                    self.problem(row.key_lines[key], cell_path, "列名无效", "invalid column name")
                    continue
                number = self.decimal(cell, row.key_lines[key], cell_path, unit)
                if number is not None:
                    columns.append((key, number))
            if len(columns) == len(row):
                rows.append(Band(tuple(columns)))
        if len(rows) != len(raw):
            return None
        reasons = _bands_reasons(rows)
        for zh, en in reasons:
            self.problem(line, path, zh, en)
        return None if reasons else tuple(rows)


# ---------------------------------------------------------------------------------------------
# Entry points


def load_bundle_text(text: str, source_name: str) -> ParameterTree:
    """Parse and validate a bundle; raise `PolicyError` with every problem found."""
    data, problems = _parse(text, source_name)
    if problems:
        raise PolicyError(problems)
    reader = _Reader(source_name)
    reader.root(data)
    if reader.problems:
        raise PolicyError(reader.problems)
    return ParameterTree(reader.parameters, reader.groups, source_name)


def load_bundle(path: str | Path) -> ParameterTree:
    """Read a bundle file (UTF-8, with or without BOM); problems name the file by its name."""
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise PolicyError(
            [Problem(file.name, None, None, f"无法读取文件：{e.strerror}", f"cannot read: {e}")]
        ) from e
    except UnicodeDecodeError as e:
        raise PolicyError(
            [Problem(file.name, None, None, "文件不是 UTF-8 编码", "the file is not UTF-8")]
        ) from e
    return load_bundle_text(text, file.name)


BUILTIN_BUNDLES: Final = ("zhuji", "point_value")
"""Bundles shipped with the package (illustrative values, see docs/policy.md)."""


def load_builtin_bundle(name: str) -> ParameterTree:
    """Load one of `BUILTIN_BUNDLES` from the package's `policy/bundles/` folder."""
    if name not in BUILTIN_BUNDLES:
        raise ParameterLookupError(
            f"没有内置政策包 {name!r}；可用：{', '.join(BUILTIN_BUNDLES)}",
            f"no built-in policy bundle {name!r}; available: {', '.join(BUILTIN_BUNDLES)}",
        )
    file = resources.files("dangliang.policy") / "bundles" / f"{name}.yaml"
    return load_bundle_text(file.read_text(encoding="utf-8"), f"{name}.yaml")


# ---------------------------------------------------------------------------------------------
# Back from the log: an adopted bundle and recorded changes are stored in canonical form


def value_from_canonical(raw: object, unit: str) -> ParamValue:
    """A value as `canonical_json` writes it (numbers as strings) back to a ParamValue."""
    if raw is None:
        return None
    kind = unit_kind(unit)
    if kind == "decimal":
        return Decimal(str(raw))
    if kind == "bands":
        assert isinstance(raw, list)
        return tuple(Band.of({k: Decimal(v) for k, v in row.items()}) for row in raw)
    assert isinstance(raw, bool | str)
    return raw


def value_to_canonical(value: ParamValue) -> object:
    """The JSON-ready form of a value, as in `canonical_json` (the inverse of the above)."""
    return _canonical_value(value)


def tree_from_canonical_json(text: str, source: str) -> ParameterTree:
    """Rebuild a tree from `canonical_json()` (descriptions are not kept, values are exact)."""
    document = json.loads(text)
    if document.get("format") != CANONICAL_FORMAT:
        raise ParameterLookupError(
            f"不认识的政策参数格式：{document.get('format')!r}",
            f"unknown policy parameter format: {document.get('format')!r}",
        )
    parameters = {
        path: Parameter(
            path=path,
            description="",
            unit=body["unit"],
            monthly=body["monthly"],
            values=tuple(
                DatedValue(
                    date.fromisoformat(v["start"]),
                    value_from_canonical(v["value"], body["unit"]),
                    v["reference"],
                )
                for v in body["values"]
            ),
        )
        for path, body in document["parameters"].items()
    }
    groups: dict[str, Group] = {}
    for path in parameters:
        parts = path.split(".")
        for i in range(len(parts)):
            groups.setdefault(".".join(parts[:i]), Group(".".join(parts[:i]), ""))
    return ParameterTree(parameters, groups, source)


def parse_value_text(text: str, unit: str) -> ParamValue:
    """A value typed by a person (`--set path=13.00`, a parameter-change file): `null` is off;
    numbers are exact decimals; switches are `true`/`false`; a banded table is JSON rows."""
    raw = text.strip()
    if raw == "null":
        return None
    kind = unit_kind(unit)
    try:
        if kind == "decimal":
            if not _DECIMAL_TEXT.fullmatch(raw):
                raise ValueError
            value: ParamValue = Decimal(raw)
        elif kind == "boolean":
            value = {"true": True, "false": False}[raw]
        elif kind == "bands":
            rows = json.loads(raw)
            value = tuple(Band.of({k: Decimal(str(v)) for k, v in row.items()}) for row in rows)
        else:
            value = raw
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        expected = {
            "decimal": ("数字，如 13.00", "a number such as 13.00"),
            "boolean": ("true 或 false", "true or false"),
            "bands": ("JSON 分档表", 'JSON rows such as [{"min_score": "0", ...}]'),
            "text": ("文字", "text"),
        }[kind]
        raise ParameterLookupError(
            f"单位 {unit} 的值应为{expected[0]}，而不是 {raw!r}",
            f"a {unit} value must be {expected[1]}, not {raw!r}",
        ) from e
    checked, reasons = _check_python_value(value, unit)
    if reasons:
        zh, en = reasons[0]
        raise ParameterLookupError(zh, en)
    return checked


def parse_yaml(text: str, source: str) -> tuple[Any, list[Problem]]:
    """YAML read as bundles are (mappings remember their lines, numbers are kept as written,
    only true/false are switches): for other policy files such as reform scenarios."""
    return _parse(text, source)


def yaml_scalar_text(raw: object) -> str:
    """A scalar from `parse_yaml` as the text a person wrote, for `parse_value_text`; an
    unquoted number is refused as in bundles."""
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, _YamlNumber):
        raise ParameterLookupError(
            f'金额、比率等数值请写成字符串（加引号）："{raw.text}"，而不是 {raw.text}',
            f'write amounts as strings (in quotes): "{raw.text}", not {raw.text}',
        )
    if isinstance(raw, list):
        return json.dumps(raw, default=str)
    return str(raw)
