"""Policy cases (tests/policy_cases/*.yaml): hand-computed payouts, checked exactly.

Each case file states a small county (1–4 institutions), the policy bundle and overrides, the
year (and month, for an advance), a written hand computation and the expected numbers. This
runner builds the parameter tree and the inputs, runs `compute_year` or `compute_month`, and
compares every expected number with `Decimal(expected) == computed` (so "12.5" equals "12.50").
The format and how to add a case: tests/policy_cases/README.md.

The runner is strict so that a typo cannot silently skip a check: unknown or repeated keys,
unquoted amounts, unknown result fields and an empty hand computation are errors, and every
expected number must appear in the hand computation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
import yaml

from dangliang.policy import ParameterTree, load_builtin_bundle, unit_kind
from dangliang.policy.subsidy import compute_month, compute_year
from dangliang.policy.subsidy_records import (
    CATEGORIES,
    CountyInputs,
    CountyResult,
    DirectiveTask,
    InstitutionInputs,
)

CASES_DIR = Path(__file__).resolve().parents[2] / "policy_cases"
CASE_FILES = sorted(CASES_DIR.glob("*.yaml"))
MIN_CASES = 12
FILE_NAME = re.compile(r"^\d{2}_[a-z0-9_]+$")

CASE_KEYS = {
    "title": True,  # key → required
    "covers": True,
    "bundle": True,
    "overrides": False,
    "year": True,
    "month": False,
    "institutions": True,
    "hand_computation": True,
    "expected": True,
    "xfail_reason": False,
}
OVERRIDE_KEYS = {"path": True, "value": True, "on": True, "until": False, "reference": True}
INSTITUTION_KEYS = {
    "name": False,
    "remote": False,
    "headcount": False,
    "score": False,
    "score_reference": False,
    "income": False,
    "pay_level": False,
    "tasks": False,
    "equivalents": False,
    "previous": False,
    "non_compliant": False,
    "force_majeure": False,
    "advances_paid": False,
}
TASK_KEYS = {"code": True, "name": False, "amount": True, "completion": True, "reference": False}
HIDDEN_RESULT_FIELDS = {"steps"}  # not numbers; the trace is tested elsewhere


class CaseError(Exception):
    """A case file that is not well formed (the message names the file and the key)."""


# ---- reading the YAML ---------------------------------------------------------------------------


class _CaseLoader(yaml.SafeLoader):
    """`yaml.safe_load` with two changes: a repeated key is an error (the second value would
    silently win), and only `true` / `false` are booleans (YAML 1.1 reads `on`, `off`, `yes`,
    `no` as booleans, and `on:` is a key of an override)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"repeated key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BOOL = "tag:yaml.org,2002:bool"
_CaseLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CaseLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|false)$"), list("tf"))


def read_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_CaseLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise CaseError(f"{where}: not valid YAML: {e}") from e


# ---- checking values ----------------------------------------------------------------------------


def _mapping(value: Any, where: str, keys: Mapping[str, bool] | None = None) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise CaseError(f"{where}: expected a mapping, got {value!r}")
    if keys is not None:
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            raise CaseError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(keys)}"
            )
        missing = [k for k, required in keys.items() if required and k not in value]
        if missing:
            raise CaseError(f"{where}: missing key(s) {', '.join(missing)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CaseError(f"{where}: expected non-empty text, got {value!r}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CaseError(f"{where}: expected a whole number {low}–{high}, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise CaseError(f"{where}: expected true or false, got {value!r}")
    return value


def _date(value: Any, where: str) -> date:
    if not isinstance(value, date):
        raise CaseError(f"{where}: expected a date YYYY-MM-DD, got {value!r}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    """An amount, rate, score or EU: a quoted string (a YAML number could be a binary float)."""
    if not isinstance(value, str):
        raise CaseError(f'{where}: write numbers as quoted strings ("12.50"), got {value!r}')
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CaseError(f"{where}: not a number: {value!r}") from None
    if not number.is_finite():
        raise CaseError(f"{where}: not a finite number: {value!r}")
    return number


def _optional_decimal(value: Any, where: str) -> Decimal | None:
    return None if value is None else _decimal(value, where)


def _month(value: Any, where: str) -> int:
    return _int(value, where, 1, 12)


def _by_month(value: Any, where: str) -> dict[int, Decimal]:
    return {
        _month(m, f"{where}.{m}"): _decimal(v, f"{where}.{m}")
        for m, v in _mapping(value, where).items()
    }


def _by_category(value: Any, where: str) -> dict[str, dict[int, Decimal]]:
    out = {}
    for c, months in _mapping(value, where).items():
        if c not in CATEGORIES:
            raise CaseError(f"{where}: unknown category {c!r}; allowed: {', '.join(CATEGORIES)}")
        out[c] = _by_month(months, f"{where}.{c}")
    return out


# ---- the case -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str  # the file name, for messages
    title: str
    covers: str
    tree: ParameterTree
    county: CountyInputs
    month: int | None
    hand_computation: str
    expected: dict[str, dict[str, Decimal | None]]  # institution → field path → value
    xfail_reason: str | None


def _override_value(tree: ParameterTree, path: str, value: Any, where: str) -> Any:
    """A YAML value as `with_overrides` takes it, by the parameter's unit."""
    if path not in tree:
        raise CaseError(f"{where}.path: unknown policy parameter {path!r}")
    if value is None:
        return None
    kind = unit_kind(tree.parameter(path).unit)
    if kind == "boolean":
        return _bool(value, where)
    if kind == "text":
        return _text(value, where)
    if kind == "bands":
        if not isinstance(value, list):
            raise CaseError(f"{where}: expected a list of rows, got {value!r}")
        return [
            {
                str(col): _decimal(v, f"{where}[{i}].{col}")
                for col, v in _mapping(row, f"{where}[{i}]").items()
            }
            for i, row in enumerate(value)
        ]
    return _decimal(value, where)


def _tree(bundle: str, overrides: Any, where: str) -> ParameterTree:
    try:
        tree = load_builtin_bundle(bundle)
    except Exception as e:
        raise CaseError(f"{where}.bundle: cannot load built-in bundle {bundle!r}: {e}") from e
    if overrides is None:
        return tree
    if not isinstance(overrides, list):
        raise CaseError(f"{where}.overrides: expected a list, got {overrides!r}")
    for i, raw in enumerate(overrides):
        at = f"{where}.overrides[{i}]"
        o = _mapping(raw, at, OVERRIDE_KEYS)
        path = _text(o["path"], f"{at}.path")
        value = _override_value(tree, path, o["value"], f"{at}.value")
        until = o.get("until")
        tree = tree.with_overrides(
            {path: value},
            on=_date(o["on"], f"{at}.on"),
            reference=_text(o["reference"], f"{at}.reference"),
            until=None if until is None else _date(until, f"{at}.until"),
        )
    return tree


def _task(raw: Any, where: str) -> DirectiveTask:
    t = _mapping(raw, where, TASK_KEYS)
    return DirectiveTask(
        code=_text(t["code"], f"{where}.code"),
        name=str(t.get("name", "")),
        amount=_decimal(t["amount"], f"{where}.amount"),
        completion=_decimal(t["completion"], f"{where}.completion"),
        reference=str(t.get("reference", "")),
    )


def _institution(code: str, raw: Any, where: str) -> InstitutionInputs:
    i = _mapping(raw, where, INSTITUTION_KEYS)
    tasks = i.get("tasks", [])
    if not isinstance(tasks, list):
        raise CaseError(f"{where}.tasks: expected a list, got {tasks!r}")
    force_majeure = i.get("force_majeure", [])
    if not isinstance(force_majeure, list):
        raise CaseError(f"{where}.force_majeure: expected a list of months, got {force_majeure!r}")
    return InstitutionInputs(
        code=code,
        name=str(i.get("name", "")),
        remote=_bool(i.get("remote", False), f"{where}.remote"),
        headcount=_int(i.get("headcount", 0), f"{where}.headcount", 0, 100_000),
        score=_optional_decimal(i.get("score"), f"{where}.score"),
        score_reference=str(i.get("score_reference", "")),
        income=_by_month(i.get("income", {}), f"{where}.income"),
        pay_level=_optional_decimal(i.get("pay_level"), f"{where}.pay_level"),
        tasks=tuple(_task(t, f"{where}.tasks[{n}]") for n, t in enumerate(tasks)),
        equivalents=_by_category(i.get("equivalents", {}), f"{where}.equivalents"),
        previous=_by_category(i.get("previous", {}), f"{where}.previous"),
        non_compliant=_by_month(i.get("non_compliant", {}), f"{where}.non_compliant"),
        force_majeure=frozenset(
            _month(m, f"{where}.force_majeure[{n}]") for n, m in enumerate(force_majeure)
        ),
        advances_paid=_optional_decimal(i.get("advances_paid"), f"{where}.advances_paid"),
    )


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _shown(hand_computation: str) -> set[Decimal]:
    """The numbers written in a hand computation (signs dropped, "12.5" equal to "12.50")."""
    return {Decimal(n) for n in NUMBER.findall(hand_computation)}


def parse_case(text: str, name: str) -> Case:
    """A case file's text, checked and turned into a parameter tree and county inputs."""
    doc = _mapping(read_yaml(text, name), name, CASE_KEYS)
    title = _text(doc["title"], f"{name}: title")
    covers = _text(doc["covers"], f"{name}: covers")
    hand = _text(doc["hand_computation"], f"{name}: hand_computation")
    year = _int(doc["year"], f"{name}: year", 2000, 2100)
    month = doc.get("month")
    month = None if month is None else _month(month, f"{name}: month")
    xfail = doc.get("xfail_reason")
    xfail = None if xfail is None else _text(xfail, f"{name}: xfail_reason")
    tree = _tree(_text(doc["bundle"], f"{name}: bundle"), doc.get("overrides"), name)
    institutions = {
        str(code): _institution(str(code), raw, f"{name}: institutions.{code}")
        for code, raw in _mapping(doc["institutions"], f"{name}: institutions").items()
    }
    if not institutions:
        raise CaseError(f"{name}: institutions: at least one institution")
    expected: dict[str, dict[str, Decimal | None]] = {}
    shown = _shown(hand)
    for code, fields in _mapping(doc["expected"], f"{name}: expected").items():
        at = f"{name}: expected.{code}"
        if str(code) not in institutions:
            raise CaseError(f"{at}: no such institution in `institutions`")
        values: dict[str, Decimal | None] = {}
        for path, raw in _mapping(fields, at).items():
            value = _optional_decimal(raw, f"{at}.{path}")
            if value is not None and abs(value) not in shown:
                raise CaseError(
                    f"{at}.{path}: the expected number {raw} is not shown in hand_computation"
                )
            values[str(path)] = value
        if not values:
            raise CaseError(f"{at}: no expected values")
        expected[str(code)] = values
    if not expected:
        raise CaseError(f"{name}: expected: no expected values")
    return Case(
        name=name,
        title=title,
        covers=covers,
        tree=tree,
        county=CountyInputs(year=year, institutions=institutions),
        month=month,
        hand_computation=hand,
        expected=expected,
        xfail_reason=xfail,
    )


def load_case(path: Path) -> Case:
    return parse_case(path.read_text(encoding="utf-8"), path.name)


# ---- running and comparing ----------------------------------------------------------------------


def run(case: Case) -> CountyResult:
    if case.month is None:
        return compute_year(case.tree, case.county)
    return compute_month(case.tree, case.county, case.month)


def resolve(result: object, path: str) -> object:
    """A field of an `InstitutionResult` by dotted path: `components.basic_medical`,
    `equivalents.basic_medical.excess`, `prices.basic_medical.7` (months are numbers)."""
    value = result
    for part in path.split("."):
        if isinstance(value, Mapping):
            key: object = int(part) if part.isdigit() else part
            if key not in value:
                raise LookupError(f"no {part!r} (has: {', '.join(str(k) for k in value)})")
            value = value[key]
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            names = [
                f.name for f in dataclasses.fields(value) if f.name not in HIDDEN_RESULT_FIELDS
            ]
            if part not in names:
                raise LookupError(f"no field {part!r} (has: {', '.join(names)})")
            value = getattr(value, part)
        else:
            raise LookupError(f"cannot look up {part!r} in {value!r}")
    return value


def mismatches(case: Case, result: CountyResult) -> list[str]:
    """Every expected number that differs: "file: C01.total: expected X != computed Y"."""
    out = []
    for code, fields in case.expected.items():
        inst = result.institutions[code]
        for path, expected in fields.items():
            where = f"{case.name}: {code}.{path}"
            try:
                computed = resolve(inst, path)
            except LookupError as e:
                raise CaseError(f"{where}: unknown result field: {e}") from None
            if computed is not None and not isinstance(computed, Decimal):
                raise CaseError(f"{where}: not a number in the result: {computed!r}")
            same = (
                computed is None
                if expected is None
                else (computed is not None and expected == computed)
            )
            if not same:
                out.append(f"{where}: expected {expected} != computed {computed}")
    return out


def check(case: Case) -> None:
    result = run(case)
    found = mismatches(case, result)
    if case.xfail_reason is not None:
        if found:
            pytest.xfail(f"{case.xfail_reason}\n" + "\n".join(found))
        pytest.fail(
            f"{case.name}: marked xfail ({case.xfail_reason}) but every expected value now "
            "matches (strict): remove xfail_reason",
            pytrace=False,
        )
    if found:
        pytest.fail(f"{case.title}\n" + "\n".join(found), pytrace=False)


# ---- the tests ----------------------------------------------------------------------------------


def test_there_are_enough_cases() -> None:
    assert len(CASE_FILES) >= MIN_CASES, (
        f"{CASES_DIR}: {len(CASE_FILES)} case files, at least {MIN_CASES} required"
    )


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_policy_case(path: Path) -> None:
    assert FILE_NAME.match(path.stem), f"{path.name}: name it like 01_growth_cap_hit.yaml"
    problem = None
    try:
        check(load_case(path))
    except CaseError as e:
        problem = str(e)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


# ---- the runner refuses malformed cases ---------------------------------------------------------

MINIMAL = """\
title: t
covers: c
bundle: zhuji
year: 2024
institutions:
  C01:
    score: "100"
    equivalents: {basic_medical: {1: "2.0000"}}
    advances_paid: "0.00"
hand_computation: |
  V = 2 × 12.50 = 25.00; settlement = 25.00 − 0 = 25.00
expected:
  C01:
    components.basic_medical: "25.00"
    settlement: "25.0"
"""


def test_minimal_case_runs() -> None:
    case = parse_case(MINIMAL, "minimal.yaml")
    assert mismatches(case, run(case)) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("covers: c\n", "cover: c\n", "unknown key(s) cover"),
        ("    score:", "    scroe:", "unknown key(s) scroe"),
        ("year: 2024\n", "year: 2024\nmonth: 13\n", "month: expected a whole number 1–12"),
        ('score: "100"', "score: 100", "write numbers as quoted strings"),
        (": |\n  V = 2", ": ''\n#", "hand_computation: expected non-empty text"),
        ("    settlement:", "    components.basic_medical:", "repeated key"),
        ('settlement: "25.0"', 'settlement: "26.00"', "26.00 is not shown in hand_computation"),
        ("bundle: zhuji\n", "bundle: zhuji\novr: []\n", "unknown key(s) ovr"),
        ("{basic_medical:", "{basic_medicine:", "unknown category 'basic_medicine'"),
        ("  C01:\n    comp", "  C02:\n    comp", "expected.C02: no such institution"),
    ],
    ids=[
        "unknown_top_key",
        "unknown_institution_key",
        "month_out_of_range",
        "unquoted_number",
        "empty_hand_computation",
        "repeated_key",
        "expected_not_shown",
        "unknown_override_list_key",
        "unknown_category",
        "expected_for_unknown_institution",
    ],
)
def test_malformed_case_is_refused(old: str, new: str, message: str) -> None:
    assert old in MINIMAL
    with pytest.raises(CaseError, match=re.escape(message)):
        parse_case(MINIMAL.replace(old, new, 1), "bad.yaml")


def test_override_on_key_is_a_date_not_a_boolean() -> None:
    text = MINIMAL.replace(
        "year: 2024\n",
        "year: 2024\noverrides:\n"
        '  - {path: unit_price.basic_medical, value: "13.00", on: 2024-01-01, reference: r}\n',
    ).replace("12.50 = 25.00", "13.00 = 26.00")
    case = parse_case(text.replace('"25.00"', '"26.00"'), "override.yaml")
    assert mismatches(case, run(case)) == [
        "override.yaml: C01.settlement: expected 25.0 != computed 26.00"
    ]


def test_unknown_result_field_is_an_error() -> None:
    case = parse_case(MINIMAL.replace("settlement:", "settlment:"), "typo.yaml")
    with pytest.raises(CaseError, match=re.escape("C01.settlment: unknown result field")):
        mismatches(case, run(case))
