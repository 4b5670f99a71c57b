"""Dated policy parameters (政策参数), loaded from a YAML bundle and validated.

The idea is OpenFisca's: policy values are *data*, a tree of named parameters in which every
value carries the date it takes effect and the document and clause it comes from. A rule step
asks for `unit_price.basic_medical` on a date and gets the value in force then, together with
its start date, unit and reference, so that every computed number can cite its parameters
(docs/compensation.md, rounding). A reform (what-if) is a modified copy of the tree; the
baseline is untouched.

Unlike OpenFisca, amounts are written as strings and read as `Decimal` (a YAML float is
refused), every value must name its unit and reference, and a bundle is refused with *all* of
its problems at once, each with file, line and key path (beancount style, see
`dangliang.importers.problems`). The YAML format is described in docs/policy.md.

Pure: nothing here reads a clock; `load_bundle` and `load_builtin_bundle` read one file.

This module holds the tree (`ParameterTree`, `ParameterSnapshot`) and its canonical JSON. Units,
values and their checks are in `dangliang.policy.parameter_values`; the line-numbered YAML
reader in `dangliang.policy.policy_yaml`; reading a bundle into a tree (`load_bundle`,
`load_builtin_bundle`) in `dangliang.policy.bundle_loader`; and the way back from the log
(canonical JSON, values a person types) in `dangliang.policy.parameters_from_log`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from dangliang.domain.problems import Problem
from dangliang.domain.values import canonical_decimal
from dangliang.policy.parameter_values import (
    DatedValue,
    Group,
    OverrideValue,
    Parameter,
    ParameterLookupError,
    ParameterValue,
    ParamValue,
    PolicyError,
    check_python_value,
    first_of_month,
)

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
                        "value": canonical_value(v.value),
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
            checked, reasons = check_python_value(value, param.unit)
            for zh, en in reasons:
                refuse(path, zh, en)
            for day in (on, until):
                if param.monthly and day is not None and day.day != 1:
                    refuse(path, *first_of_month(day))
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
            zh, en = first_of_month(start)
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


def canonical_value(value: ParamValue) -> object:
    if isinstance(value, Decimal):
        return str(canonical_decimal(value))
    if isinstance(value, tuple):
        return [{name: str(canonical_decimal(v)) for name, v in band.columns} for band in value]
    return value
