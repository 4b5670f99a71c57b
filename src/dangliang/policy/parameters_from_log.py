"""Policy parameters back from the log (日志): canonical JSON, recorded changes, typed values.

An adopted bundle and recorded parameter changes (参数调整) are stored in canonical form (see
`ParameterTree.canonical_json`); this module turns them back into values and trees, and reads
a value as a person types it (`--set path=13.00`, a parameter-change file) before it is
recorded.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from dangliang.policy.bundle_loader import DECIMAL_TEXT
from dangliang.policy.parameter_values import (
    Band,
    DatedValue,
    Group,
    Parameter,
    ParameterLookupError,
    ParamValue,
    check_python_value,
    unit_kind,
)
from dangliang.policy.parameters import CANONICAL_FORMAT, ParameterTree, canonical_value

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
    return canonical_value(value)


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
            if not DECIMAL_TEXT.fullmatch(raw):
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
    checked, reasons = check_python_value(value, unit)
    if reasons:
        zh, en = reasons[0]
        raise ParameterLookupError(zh, en)
    return checked
