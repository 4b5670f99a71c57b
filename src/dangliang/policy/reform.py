"""Reforms (改革方案试算): parameter values changed from a date, applied to a copy of the
parameters and computed beside the baseline. Nothing is recorded; to adopt a change, record
it with `dangliang policy set`.

A scenario file (YAML, read like a bundle: amounts as strings, every problem reported with its
file, line and key):

    description: 基本医疗单价上调至 13 元 / basic-medical price 13
    changes:
      - {path: unit_price.basic_medical, value: "13.00", from: 2024-07-01}
      - {path: advance.ratio, value: "0.90", from: 2024-01-01, until: 2024-07-01}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from dangliang.domain.problems import Problem
from dangliang.policy.parameter_values import ParameterLookupError, ParamValue, PolicyError
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import parse_value_text
from dangliang.policy.policy_yaml import parse_yaml, yaml_scalar_text

CHANGE_KEYS = ("path", "value", "from", "until")


@dataclass(frozen=True)
class Change:
    path: str
    value: ParamValue
    start: date
    until: date | None = None


@dataclass(frozen=True)
class Scenario:
    description: str
    changes: tuple[Change, ...]

    def apply(self, tree: ParameterTree) -> ParameterTree:
        """A copy of `tree` with every change; the baseline is untouched."""
        for change in self.changes:
            tree = tree.with_overrides(
                {change.path: change.value},
                on=change.start,
                until=change.until,
                reference=f"试算 / what-if: {self.description}",
            )
        return tree

    def __add__(self, other: Scenario) -> Scenario:
        return Scenario(f"{self.description}; {other.description}", self.changes + other.changes)


def scenario_from_sets(sets: Iterable[str], tree: ParameterTree, start: date) -> Scenario:
    """`--set path=value` (repeatable): each holds from `start` (the computed period's)."""
    changes = []
    problems = []
    for text in sets:
        path, sep, value = (part.strip() for part in text.partition("="))
        try:
            if not sep:
                raise ParameterLookupError(
                    f"应写成 参数=取值：{text!r}", f"expected path=value: {text!r}"
                )
            unit = tree.parameter(path).unit
            changes.append(Change(path, parse_value_text(value, unit), start))
        except ParameterLookupError as e:
            problems.append(Problem("--set", None, path, e.message_zh, e.message_en))
    if problems:
        raise PolicyError(problems)
    return Scenario(", ".join(sets), tuple(changes))


def load_scenario(path: Path, tree: ParameterTree) -> Scenario:
    """Read and check a scenario file against `tree`; every problem with file:line:key."""
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError([Problem(name, None, None, f"无法读取：{e}", f"cannot read: {e}")]) from e
    data, problems = parse_yaml(text, name)
    if problems:
        raise PolicyError(problems)
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        raise PolicyError(
            [Problem(name, None, "changes", "缺少 changes 列表", "a list `changes` is required")]
        )
    problems = [
        Problem(name, _line(data, key), str(key), f"未知的键 {key!r}", f"unknown key {key!r}")
        for key in data
        if key not in ("description", "changes")
    ]
    changes = []
    for i, raw in enumerate(data["changes"]):
        where = f"changes[{i}]"
        line = getattr(raw, "line", _line(data, "changes"))
        try:
            changes.append(_change(raw, tree))
        except ParameterLookupError as e:
            problems.append(Problem(name, line, where, e.message_zh, e.message_en))
    if problems:
        raise PolicyError(problems)
    return Scenario(str(data.get("description") or name), tuple(changes))


def _change(raw: Any, tree: ParameterTree) -> Change:
    if not isinstance(raw, dict) or set(raw) - set(CHANGE_KEYS) or "path" not in raw:
        raise ParameterLookupError(
            "每项须有 path、value、from，可有 until",
            "each change has path, value, from and optionally until",
        )
    param = tree.parameter(str(raw["path"]))
    value = parse_value_text(yaml_scalar_text(raw.get("value")), param.unit)
    start = _date(raw.get("from"), "from")
    until = None if raw.get("until") is None else _date(raw["until"], "until")
    for day in (start, until):
        if param.monthly and day is not None and day.day != 1:
            raise ParameterLookupError(
                f"{param.path} 按月生效，日期必须是某月 1 日：{day.isoformat()}",
                f"{param.path} is monthly: dates must be the 1st of a month ({day.isoformat()})",
            )
    return Change(param.path, value, start, until)


def _date(raw: object, key: str) -> date:
    if isinstance(raw, date):
        return raw
    raise ParameterLookupError(
        f"{key} 应为日期 YYYY-MM-DD：{raw!r}", f"{key} must be a date YYYY-MM-DD: {raw!r}"
    )


def _line(mapping: Any, key: str) -> int | None:
    lines = getattr(mapping, "key_lines", {})
    return lines.get(key)
