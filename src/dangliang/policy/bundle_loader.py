"""Loading a policy bundle (政策包): walking the YAML tree into parameters, and the entry points.

The walker collects *every* problem of a bundle, each with file, line and key path, before a
bundle is refused as a whole (`PolicyError`); `load_bundle_text`, `load_bundle` and
`load_builtin_bundle` return a validated `ParameterTree`. The YAML format is described in
docs/policy.md.

Pure: nothing here reads a clock; `load_bundle` and `load_builtin_bundle` read one file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from dangliang.domain.problems import Problem
from dangliang.policy.parameter_values import (
    UNITS,
    Band,
    DatedValue,
    Group,
    Parameter,
    ParameterLookupError,
    ParamValue,
    PolicyError,
    bands_reasons,
    decimal_reasons,
    unit_kind,
)
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.policy_yaml import Map, Unreadable, YamlNumber, parse

# ---------------------------------------------------------------------------------------------
# Walking the YAML tree into parameters, collecting every problem

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DECIMAL_TEXT = re.compile(r"^[+-]?[0-9]+(?:\.[0-9]+)?$")
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
    if isinstance(key, YamlNumber | Unreadable):
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
        elif not isinstance(data, Map):
            self.problem(
                1, "", "政策包应为参数与参数组的映射", "a bundle is a mapping of parameters"
            )
        else:
            self.group(data, "", 1)

    def mapping(self, m: Map, path: str, allowed: Sequence[str] | None = None) -> None:
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

    def group(self, m: Map, path: str, line: int) -> None:
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
            if not isinstance(value, Map):
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

    def parameter(self, m: Map, path: str, line: int) -> None:
        self.mapping(m, path, PARAMETER_KEYS)
        description = self.text(m, "description", path, line, required=True)
        unit = self.unit(m, path, line)
        monthly = self.monthly(m, path)
        metadata = self.metadata(m, path)
        values = self.dated_values(m, path, line, unit, monthly)
        if description and unit and values:
            self.parameters[path] = Parameter(path, description, unit, monthly, values, metadata)

    def text(self, m: Map, key: str, path: str, line: int, *, required: bool) -> str | None:
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

    def unit(self, m: Map, path: str, line: int) -> str | None:
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

    def monthly(self, m: Map, path: str) -> bool:
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

    def metadata(self, m: Map, path: str) -> Mapping[str, str]:
        if "metadata" not in m:
            return MappingProxyType({})
        value, where = m["metadata"], _join(path, "metadata")
        if not isinstance(value, Map) or not all(
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
        self, m: Map, path: str, line: int, unit: str | None, monthly: bool
    ) -> tuple[DatedValue, ...] | None:
        if "values" not in m:
            self.problem(
                line, _join(path, "values"), "缺少带生效日期的取值（values）", "missing values"
            )
            return None
        raw, where = m["values"], _join(path, "values")
        if not isinstance(raw, Map) or not raw:
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
        if not isinstance(entry, Map):
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
        if isinstance(raw, Unreadable):
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
        if isinstance(raw, YamlNumber):
            self.problem(
                line,
                path,
                f'金额、比率等数值请写成字符串（加引号）："{raw.text}"，而不是 {raw.text}',
                f'write amounts as strings (in quotes): "{raw.text}", not {raw.text}',
            )
            return None
        if not (isinstance(raw, str) and DECIMAL_TEXT.match(raw.strip())):
            self.problem(
                line,
                path,
                f'应为写成字符串的数值，如 "12.50"：{_key_text(raw)!r}',
                f'expected a number written as a string, e.g. "12.50": {_key_text(raw)!r}',
            )
            return None
        number = Decimal(raw.strip())
        reasons = decimal_reasons(number, unit)
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
            if not isinstance(row, Map) or not row:
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
        reasons = bands_reasons(rows)
        for zh, en in reasons:
            self.problem(line, path, zh, en)
        return None if reasons else tuple(rows)


# ---------------------------------------------------------------------------------------------
# Entry points


def load_bundle_text(text: str, source_name: str) -> ParameterTree:
    """Parse and validate a bundle; raise `PolicyError` with every problem found."""
    data, problems = parse(text, source_name)
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


BUILTIN_BUNDLES: Final = ("zhuji", "point_value", "deqing_insurance", "zhijiang_insurance")
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
