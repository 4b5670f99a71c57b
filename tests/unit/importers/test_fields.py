"""Unit tests for row validation: pydantic field types → bilingual Problems with row and column.

Rows are given as the readers give them: every canonical column present, cells as text,
blank cells as None.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from dangliang.cli.common import echo_lines
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.fields import (
    Action,
    Category,
    Establishment,
    InstitutionKind,
    NonNegativeDecimal4,
    Post,
    validate_chunk,
)
from dangliang.importers.services import ServiceRow

ROWS: TypeAdapter[list[ServiceRow]] = TypeAdapter(list[ServiceRow])
FILE = "services.csv"


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source_id": "HIS000000001",
        "institution_code": "C01",
        "staff_id": "S00001",
        "item_code": "BM001",
        "quantity": "1",
        "service_date": "2024-03-05",
        "patient_ref": "P1",
        "compliant": None,
    }
    base.update(overrides)
    return base


def check(*rows: dict[str, Any], first_row: int = 2) -> tuple[list[tuple[int, Any]], list[Problem]]:
    numbered = [(first_row + i, r) for i, r in enumerate(rows)]
    return validate_chunk(ROWS, FILE, numbered)


def only_problem(**overrides: Any) -> Problem:
    good, problems = check(row(**overrides))
    assert good == []
    assert len(problems) == 1, problems
    return problems[0]


# ----------------------------------------------------------------------------- good rows


def test_valid_row_is_converted() -> None:
    good, problems = check(row(quantity="1.50", compliant="是"))
    assert problems == []
    ((n, r),) = good
    assert n == 2
    assert r == {
        "source_id": "HIS000000001",
        "institution_code": "C01",
        "staff_id": "S00001",
        "item_code": "BM001",
        "quantity": Decimal("1.50"),
        "service_date": date(2024, 3, 5),
        "patient_ref": "P1",
        "compliant": True,
    }


def test_optional_cells_may_be_blank() -> None:
    good, problems = check(row(patient_ref=None, compliant=None))
    assert problems == []
    assert good[0][1]["patient_ref"] is None
    assert good[0][1]["compliant"] is None  # blank = default (the importer stores true)


def test_slash_date_is_accepted() -> None:
    good, problems = check(row(service_date="2024/03/05"))
    assert problems == []
    assert good[0][1]["service_date"] == date(2024, 3, 5)


@pytest.mark.parametrize("text", ["2024/3/5", "2024/1/2", "2024-3-5"])
def test_unpadded_slash_date_is_accepted(text: str) -> None:
    good, problems = check(row(service_date=text))
    assert problems == []
    assert good[0][1]["service_date"] == date(*map(int, text.replace("-", "/").split("/")))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("是", True),
        ("否", False),
        ("达标", True),
        ("不达标", False),
        ("true", True),
        ("TRUE", True),
        (" Yes ", True),
        ("n", False),
        ("1", True),
        ("0", False),
        (True, True),
        (False, False),
    ],
)
def test_compliant_words(text: Any, value: bool) -> None:
    good, problems = check(row(compliant=text))
    assert problems == []
    assert good[0][1]["compliant"] is value


@pytest.mark.parametrize(
    ("text", "value"),
    [("2", "2"), ("0.5", "0.5"), ("1.2345", "1.2345"), ("100", "100"), ("1.50", "1.50")],
)
def test_good_quantities(text: str, value: str) -> None:
    good, problems = check(row(quantity=text))
    assert problems == []
    assert good[0][1]["quantity"] == Decimal(value)


# ------------------------------------------------------------------------------ bad cells


@pytest.mark.parametrize(
    "column", ["source_id", "institution_code", "staff_id", "item_code", "quantity", "service_date"]
)
def test_required_blank_cell(column: str) -> None:
    p = only_problem(**{column: None})
    assert (p.file, p.row, p.column) == (FILE, 2, column)
    assert (p.message_zh, p.message_en) == ("必填", "required")
    assert str(p) == f"{FILE}:2:{column}: 必填 / required"


def test_bad_date() -> None:
    p = only_problem(service_date="2024-02-30")
    assert (p.row, p.column) == (2, "service_date")
    assert p.message_zh == "日期无效，应为 YYYY-MM-DD：'2024-02-30'"
    assert p.message_en == "not a valid date, expected YYYY-MM-DD: '2024-02-30'"


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "05/03/2024"])
def test_other_bad_dates(text: str) -> None:
    p = only_problem(service_date=text)
    assert p.column == "service_date"
    assert "YYYY-MM-DD" in p.message_zh and "YYYY-MM-DD" in p.message_en
    assert repr(text) in p.message_en or repr(text.replace("/", "-")) in p.message_en


def test_date_with_time_of_day() -> None:
    p = only_problem(service_date="2024-03-05T10:00")
    assert p.column == "service_date"
    assert p.message_zh.startswith("日期不应包含时间")
    assert p.message_en.startswith("a date must not carry a time of day")


@pytest.mark.parametrize("text", ["-2", "0", "-0.5", "0.0000"])
def test_non_positive_quantity(text: str) -> None:
    p = only_problem(quantity=text)
    assert p.column == "quantity"
    assert p.message_zh == f"必须大于 0：{text!r}"
    assert p.message_en == f"must be greater than 0: {text!r}"


@pytest.mark.parametrize("text", ["abc", "1,5", "NaN", "inf", "一"])
def test_quantity_not_a_number(text: str) -> None:
    p = only_problem(quantity=text)
    assert p.column == "quantity"
    assert p.message_zh == f"不是有效的数字：{text!r}"
    assert p.message_en == f"not a valid number: {text!r}"


def test_quantity_with_five_places() -> None:
    p = only_problem(quantity="1.23456")
    assert p.column == "quantity"
    assert p.message_zh == "小数位最多 4 位：'1.23456'"
    assert p.message_en == "at most 4 decimal places: '1.23456'"


@pytest.mark.parametrize("text", ["maybe", "t", "对", ""])
def test_compliant_not_yes_or_no(text: str) -> None:
    p = only_problem(compliant=text)
    assert p.column == "compliant"
    assert p.message_zh == f"应为 是/否（true/false）：{text!r}"
    assert p.message_en == f"not a yes/no value: {text!r}"


def test_code_with_a_space_or_pipe() -> None:
    for code in ("C 01", "C01|x", "机构1"):
        p = only_problem(institution_code=code)
        assert p.column == "institution_code"
        assert p.message_zh.startswith("编码只能包含字母、数字和 - _ .")
        assert p.message_en == f"a code may contain only letters, digits and - _ .: {code!r}"


def test_too_long() -> None:
    p = only_problem(staff_id="S" * 65)
    assert p.column == "staff_id"
    assert p.message_zh.startswith("内容过长") and p.message_en.startswith("too long")
    assert only_problem(source_id="x" * 129).column == "source_id"
    assert check(row(source_id="记" * 128))[1] == []


def test_absent_key_is_reported_as_required() -> None:
    r = row()
    del r["patient_ref"]
    good, problems = check(r)
    assert good == []
    (p,) = problems
    assert (p.column, p.message_zh, p.message_en) == ("patient_ref", "必填", "required")


def test_every_bad_cell_of_a_row_is_reported() -> None:
    good, problems = check(
        row(source_id=None, quantity="abc", service_date="2024-02-30", compliant="maybe")
    )
    assert good == []
    assert [(p.row, p.column) for p in problems] == [
        (2, "source_id"),
        (2, "quantity"),
        (2, "service_date"),
        (2, "compliant"),
    ]
    for p in problems:
        assert p.message_zh and p.message_en
        assert p.message_zh != p.message_en


def test_valid_rows_keep_their_row_numbers_when_others_are_bad() -> None:
    rows = [
        row(source_id="A"),  # 2
        row(source_id="B", quantity="-1"),  # 3 bad
        row(source_id="C"),  # 4
        row(source_id="D", service_date="2024-02-30", staff_id=None),  # 5 bad twice
        row(source_id="E", compliant="否"),  # 6
    ]
    good, problems = check(*rows)
    assert [(n, r["source_id"]) for n, r in good] == [(2, "A"), (4, "C"), (6, "E")]
    assert good[2][1]["compliant"] is False
    assert [(p.row, p.column) for p in problems] == [
        (3, "quantity"),
        (5, "staff_id"),
        (5, "service_date"),
    ]


def test_row_numbers_are_taken_from_the_input_not_the_position() -> None:
    numbered = [
        (7, row(source_id="A")),
        (12, row(source_id="B", quantity="0")),
        (40, row(source_id="C")),
    ]
    good, problems = validate_chunk(ROWS, "x.jsonl", numbered)
    assert [n for n, _ in good] == [7, 40]
    assert [(p.file, p.row) for p in problems] == [("x.jsonl", 12)]


# ---------------------------------------------------------------------------- vocabulary


class VocabularyRow(TypedDict):
    kind: InstitutionKind
    category: Category
    post: Post
    establishment: Establishment
    action: Action


VOCAB = TypeAdapter(list[VocabularyRow])


def test_vocabularies_accept_chinese_spellings() -> None:
    good, problems = validate_chunk(
        VOCAB,
        "v.csv",
        [
            (
                2,
                {
                    "kind": "乡镇卫生院",
                    "category": "基本公共卫生",
                    "post": "乡村医生",
                    "establishment": "在编",
                    "action": "作废",
                },
            ),
            (
                3,
                {
                    "kind": "社区卫生服务中心",
                    "category": "基本医疗服务",
                    "post": "行政",
                    "establishment": "编外",
                    "action": "更正",
                },
            ),
            (
                4,
                {
                    "kind": " Village_Clinic ",
                    "category": "BASIC_MEDICAL",
                    "post": "it",
                    "establishment": "On",
                    "action": "void",
                },
            ),
        ],
    )
    assert problems == []
    assert [r for _, r in good] == [
        {
            "kind": "township_health_centre",
            "category": "basic_public_health",
            "post": "village_doctor",
            "establishment": "on",
            "action": "void",
        },
        {
            "kind": "community_health_centre",
            "category": "basic_medical",
            "post": "admin",
            "establishment": "off",
            "action": "correct",
        },
        {
            "kind": "village_clinic",
            "category": "basic_medical",
            "post": "it",
            "establishment": "on",
            "action": "void",
        },
    ]


@pytest.mark.parametrize(
    ("column", "value", "zh", "allowed"),
    [
        (
            "kind",
            "医院",
            "未知机构类型：'医院'",
            "township_health_centre, community_health_centre, village_clinic",
        ),
        ("category", "药品", "未知类别：'药品'", "basic_medical, basic_public_health"),
        (
            "post",
            "surgeon",
            "未知岗位：'surgeon'",
            "clinical, nursing, public_health, medical_tech, pharmacy, admin, it, village_doctor",
        ),
        ("establishment", "临时", "未知编制类型：'临时'", "on, off"),
        ("action", "删除", "未知操作：'删除'", "void, correct"),
    ],
)
def test_unknown_vocabulary_word_lists_the_allowed_codes(
    column: str, value: str, zh: str, allowed: str
) -> None:
    cells = {
        "kind": "乡镇卫生院",
        "category": "基本医疗",
        "post": "临床",
        "establishment": "在编",
        "action": "作废",
        column: value,
    }
    good, problems = validate_chunk(VOCAB, "v.csv", [(5, cells)])
    assert good == []
    (p,) = problems
    assert (p.file, p.row, p.column) == ("v.csv", 5, column)
    assert p.message_zh == zh
    what = {"kind": "institution kind"}.get(column, column)
    assert p.message_en == f"unknown {what} {value!r} (one of: {allowed})"


def test_blank_vocabulary_cell_is_required() -> None:
    cells = {
        "kind": None,
        "category": "基本医疗",
        "post": "临床",
        "establishment": "在编",
        "action": "作废",
    }
    _, (p,) = validate_chunk(VOCAB, "v.csv", [(2, cells)])
    assert (p.column, p.message_zh, p.message_en) == ("kind", "必填", "required")


class ValueRow(TypedDict):
    equivalent_value: NonNegativeDecimal4


def test_non_negative_decimal() -> None:
    adapter = TypeAdapter(list[ValueRow])
    good, problems = validate_chunk(
        adapter,
        "c.csv",
        [
            (2, {"equivalent_value": "0"}),
            (3, {"equivalent_value": "-0.1"}),
            (4, {"equivalent_value": "1.00001"}),
            (5, {"equivalent_value": "1.2345"}),
        ],
    )
    assert [(n, r["equivalent_value"]) for n, r in good] == [
        (2, Decimal(0)),
        (5, Decimal("1.2345")),
    ]
    assert [(p.row, p.message_zh, p.message_en) for p in problems] == [
        (3, "不能为负数：'-0.1'", "must not be negative: '-0.1'"),
        (4, "小数位最多 4 位：'1.00001'", "at most 4 decimal places: '1.00001'"),
    ]


# ------------------------------------------------------------------------------- problems


def test_problem_str_format() -> None:
    p = Problem("services.csv", 7, "quantity", "必须大于 0：'-2'", "must be greater than 0: '-2'")
    assert str(p) == "services.csv:7:quantity: 必须大于 0：'-2' / must be greater than 0: '-2'"
    assert (
        str(Problem("s.csv", None, None, "文件为空", "empty file"))
        == "s.csv: 文件为空 / empty file"
    )
    assert str(Problem("s.csv", 1, None, "表头", "header")) == "s.csv:1: 表头 / header"
    assert str(Problem("s.csv", None, "quantity", "缺少列", "missing column")) == (
        "s.csv:quantity: 缺少列 / missing column"
    )
    assert p.as_dict() == {
        "file": "services.csv",
        "row": 7,
        "column": "quantity",
        "message_zh": "必须大于 0：'-2'",
        "message_en": "must be greater than 0: '-2'",
    }


def test_problems_found_sorts_by_row_then_column() -> None:
    problems = [
        Problem("f.csv", 12, "service_date", "b", "b"),
        Problem("f.csv", 3, "staff_id", "c", "c"),
        Problem("f.csv", None, "quantity", "file-level", "file-level"),
        Problem("f.csv", 3, "institution_code", "a", "a"),
        Problem("f.csv", 100, "quantity", "d", "d"),
        Problem("f.csv", 20, "item_code", "e", "e"),
    ]
    e = ProblemsFound(problems)
    assert [(p.row, p.column) for p in e.problems] == [
        (None, "quantity"),
        (3, "institution_code"),
        (3, "staff_id"),
        (12, "service_date"),
        (20, "item_code"),
        (100, "quantity"),  # numerically, not as text
    ]
    assert str(e) == "6 problem(s) found"
    assert e.report().splitlines() == [str(p) for p in e.problems] == list(e.lines())
    assert e.report().splitlines()[1] == "f.csv:3:institution_code: a / a"


def test_the_command_line_prints_a_long_report_in_chunks_and_every_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = [f"f.csv:{n}:staff_id: 未知 / unknown" for n in range(2, 9)]
    echo_lines(iter(lines), chunk=3)  # 3 + 3 + 1
    assert capsys.readouterr().err.splitlines() == lines


def test_problems_repeating_a_message_share_one_string() -> None:
    """A bad file repeats a few messages on millions of rows: each problem points at one
    string per message instead of holding its own copy (a refused file of 1,000,000 rows
    with 3,000,000 problems: 1.26 GB -> 0.68 GB, BENCHMARKS.md)."""
    value = "".join(["C", "11"])  # built at run time, as the checks build their messages
    a = Problem.unknown("f.csv", 2, "institution_code", "机构编码", "institution code", value)
    b = Problem.unknown("f.csv", 3, "institution_code", "机构编码", "institution code", value)
    assert a.message_en == b.message_en == "unknown institution code 'C11'"
    assert a.message_en is b.message_en and a.message_zh is b.message_zh
