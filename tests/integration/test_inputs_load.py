"""Loading compensation inputs (scores, income, pay levels, directive tasks, force majeure,
policy-parameter changes, performance-pay pools, personal coefficients, items outside the
pool), on SQLite and on PostgreSQL.

For each loader: the generated file loads and its facts are in the log (read back through the
aggregates), loading it again records nothing, a file with several mistakes is refused with
every problem (file, row, column) and nothing written, and Chinese headers work.

Each loader's facts are appended and read back on both backends (`test_*_load_and_reload`);
the variants of its file (Chinese headers, other formats, a file refused with every problem,
a refusal before anything is read) run on SQLite only (`sqlite_only`): what they check is the
reading and the checking of the file, which happen before the log is touched.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dangliang.application import Dangliang
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.ids import (
    county_policy_id,
    force_majeure_id,
    institution_year_id,
    staff_year_id,
)
from dangliang.domain.inputs import OUTSIDE_KINDS, ForceMajeure, InstitutionYear, StaffYear
from dangliang.domain.policy import CountyPolicy
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers import input_files as inputs
from dangliang.importers import performance_pay_inputs as pay_inputs
from dangliang.importers.formats import (
    FORCE_MAJEURE,
    INCOME,
    OUTSIDE_ITEMS,
    PARAMETER_CHANGES,
    PAY_LEVELS,
    POOLS,
    SCORES,
    STAFF_COEFFICIENTS,
    TASKS,
    FileFormat,
)
from dangliang.importers.reference import LoadResult
from dangliang.policy import ParameterTree, load_builtin_bundle
from tests.conftest import sqlite_only

ACTOR = "录入员 tester"
YEAR = 2024

Loader = Callable[..., LoadResult]


# ---- helpers ----------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write(
    path: Path, fmt: FileFormat, rows: Iterable[Sequence[str]], chinese: bool = False
) -> Path:
    header = [c.label_zh for c in fmt.columns] if chinese else list(fmt.column_names)
    return write_table(path, header, rows)


def load(app: Dangliang, loader: Loader, path: Path, actor: str = ACTOR) -> LoadResult:
    return loader(app.log, app.registry(), path, actor)


def refused(app: Dangliang, loader: Loader, path: Path) -> list[Problem]:
    """Load a bad file: refused, nothing written; every problem names the file."""
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        load(app, loader, path)
    assert app.log.head() == head
    problems = caught.value.problems
    assert all(p.file == str(path) for p in problems)
    return problems


def cells(problems: Sequence[Problem]) -> set[tuple[int | None, str | None]]:
    return {(p.row, p.column) for p in problems}


def message(problems: Sequence[Problem], row: int, column: str) -> str:
    found = [p for p in problems if (p.row, p.column) == (row, column)]
    assert len(found) == 1, f"expected one problem at row {row}, {column}: {problems}"
    return f"{found[0].message_zh} / {found[0].message_en}"


def year_of(app: Dangliang, code: str, year: int = YEAR) -> InstitutionYear:
    found: InstitutionYear = app.log.repository.get(institution_year_id(code, year))
    return found


def reloads_nothing(app: Dangliang, loader: Loader, path: Path) -> None:
    head = app.log.head()
    again = load(app, loader, path, actor="someone else")
    assert (again.changed, again.events) == (0, 0)
    assert again.rows > 0
    assert app.log.head() == head


@pytest.fixture
def loaded(reference_app: Dangliang) -> Dangliang:
    return reference_app


# ---- assessment scores ------------------------------------------------------------------


def test_scores_load_and_reload(loaded: Dangliang, county: GeneratedCounty) -> None:
    app = loaded
    path = county.files["scores"]
    rows = read_rows(path)
    head = app.log.head()
    result = load(app, inputs.load_scores, path)

    assert (result.rows, result.changed) == (139, 139)
    assert result.events == 2 * 139  # each institution-year opened, then scored
    assert app.log.head() == head + result.events
    for r in rows[:3]:
        inst = year_of(app, r["institution_code"])
        assert (inst.institution_code, inst.year) == (r["institution_code"], YEAR)
        assert inst.score == (Decimal(r["score"]), r["reference"])
    reloads_nothing(app, inputs.load_scores, path)

    # a corrected score is one event
    first = rows[0]
    changed = write(
        Path(path).with_name("scores_fixed.csv"),
        SCORES,
        [[first["institution_code"], str(YEAR), "77.25", first["reference"]]],
    )
    assert load(app, inputs.load_scores, changed).events == 1
    assert year_of(app, first["institution_code"]).score == (Decimal("77.25"), first["reference"])


@sqlite_only  # the file's reading; both backends: test_scores_load_and_reload
def test_scores_with_chinese_headers(loaded: Dangliang, tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "考核得分.csv",
        ["机构编码", "考核年度", "综合考核得分", "考核依据"],
        [["C01", "2024", "88.50", "2024年度考核"], ["C02V01", "2024", "100", "2024年度考核"]],
    )
    assert load(loaded, inputs.load_scores, path).events == 4
    assert year_of(loaded, "C01").score == (Decimal("88.5"), "2024年度考核")
    assert year_of(loaded, "C02V01").score == (Decimal("100"), "2024年度考核")


@sqlite_only  # the file's reading; both backends: test_scores_load_and_reload
def test_scores_bad_file_is_refused_whole(loaded: Dangliang, tmp_path: Path) -> None:
    path = write(
        tmp_path / "scores.csv",
        SCORES,
        [
            ["C01", "2024", "90", "考核"],  # 2: good
            ["X99", "2024", "90", "考核"],  # 3: unknown institution
            ["C02", "2024", "100.5", "考核"],  # 4: above 100
            ["C03", "20x4", "abc", "考核"],  # 5: year and score
            ["C04", "2024", "80.125", ""],  # 6: three places, no reference
            ["C01", "2024", "91", "考核"],  # 7: same key as row 2
        ],
    )
    problems = refused(loaded, inputs.load_scores, path)
    assert cells(problems) == {
        (3, "institution_code"),
        (4, "score"),
        (5, "year"),
        (5, "score"),
        (6, "score"),
        (6, "reference"),
        (7, "institution_code"),
    }
    assert "unknown institution code 'X99'" in message(problems, 3, "institution_code")
    assert "between 0 and 100" in message(problems, 4, "score")
    assert "at most 2 decimal places" in message(problems, 6, "score")
    assert "required" in message(problems, 6, "reference")
    assert "same as row 2" in message(problems, 7, "institution_code")


# ---- medical-service income --------------------------------------------------------------


def test_income_loads_and_reloads(loaded: Dangliang, county: GeneratedCounty) -> None:
    app = loaded
    path = county.files["income"]
    rows = read_rows(path)
    months = {r["month"] for r in rows}
    result = load(app, inputs.load_income, path)

    assert result.rows == len(rows) == 12 * len(months)
    assert result.events == 12 + len(rows)  # one institution-year per centre, then each month
    c01 = year_of(app, "C01")
    expected = {
        date.fromisoformat(f"{r['month']}-01"): Decimal(r["amount"])
        for r in rows
        if r["institution_code"] == "C01"
    }
    assert c01.income == expected
    assert all(a == a.quantize(Decimal("0.01")) and a > 0 for a in c01.income.values())
    reloads_nothing(app, inputs.load_income, path)


@sqlite_only  # the file's reading; both backends: test_income_loads_and_reloads
def test_income_with_chinese_headers_and_month_spellings(loaded: Dangliang, tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "收入.csv",
        ["机构编码", "收入月份", "医疗服务收入（不含药品）"],
        [
            ["C01", "2024-01", "1200"],
            ["C01", "2024/2", "1300.5"],
            ["C01", "202403", "1400.25"],
            ["C01", "2024年4月", "0"],
            ["C02", "2023-12", "99.99"],  # the 2023 institution-year
        ],
    )
    result = load(loaded, inputs.load_income, path)
    assert (result.rows, result.events) == (5, 2 + 5)
    assert year_of(loaded, "C01").income == {
        date(2024, 1, 1): Decimal("1200.00"),
        date(2024, 2, 1): Decimal("1300.50"),
        date(2024, 3, 1): Decimal("1400.25"),
        date(2024, 4, 1): Decimal("0.00"),
    }
    assert year_of(loaded, "C02", 2023).income == {date(2023, 12, 1): Decimal("99.99")}
    # the same months written another way are the same facts
    again = write(
        tmp_path / "income.csv",
        INCOME,
        [["C01", "2024-02", "1300.50"], ["C01", "2024-3", "1400.25"]],
    )
    assert load(loaded, inputs.load_income, again).events == 0


@sqlite_only  # the file's reading; both backends: test_income_loads_and_reloads
def test_income_bad_file_is_refused_whole(loaded: Dangliang, tmp_path: Path) -> None:
    path = write(
        tmp_path / "income.csv",
        INCOME,
        [
            ["C01", "2024-01", "100"],  # 2: good
            ["C01", "2024-13", "100"],  # 3: no such month
            ["C01", "2024-02", "-5"],  # 4: negative
            ["C01", "2024-03", "1.234"],  # 5: three places
            ["C01", "2024-04", "1,000"],  # 6: thousands separator
            ["C01", "2024/1", "100"],  # 7: the month of row 2 again
            ["C01", "2024-05-15", ""],  # 8: a day, not a month; no amount
            ["C99", "2024-06", "100"],  # 9: unknown institution
        ],
    )
    problems = refused(loaded, inputs.load_income, path)
    assert cells(problems) == {
        (3, "month"),
        (4, "amount"),
        (5, "amount"),
        (6, "amount"),
        (7, "institution_code"),
        (8, "month"),
        (8, "amount"),
        (9, "institution_code"),
    }
    assert "expected YYYY-MM" in message(problems, 3, "month")
    assert "must not be negative" in message(problems, 4, "amount")
    assert "at most 2 decimal places" in message(problems, 5, "amount")
    assert "not a valid number" in message(problems, 6, "amount")
    assert "same as row 2" in message(problems, 7, "institution_code")


@sqlite_only  # the file's reading; both backends: test_income_loads_and_reloads
def test_income_from_xlsx_with_date_cells_and_numbers(loaded: Dangliang, tmp_path: Path) -> None:
    """Excel turns a typed `2024-03` into a date cell (the 1st) and amounts into numbers."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["机构编码", "月份", "医疗服务收入"])
    sheet.append(["C01", datetime(2024, 3, 1), 1234.5])
    sheet.append(["C01", "2024-04", 1000])
    path = tmp_path / "income.xlsx"
    workbook.save(path)
    assert load(loaded, inputs.load_income, path).events == 3
    assert year_of(loaded, "C01").income == {
        date(2024, 3, 1): Decimal("1234.50"),
        date(2024, 4, 1): Decimal("1000.00"),
    }


# ---- pay levels ---------------------------------------------------------------------------


def test_pay_levels_load_and_reload(loaded: Dangliang, county: GeneratedCounty) -> None:
    app = loaded
    path = county.files["pay_levels"]
    rows = read_rows(path)
    result = load(app, inputs.load_pay_levels, path)
    assert (result.rows, result.events) == (12, 24)
    for r in rows:
        assert year_of(app, r["institution_code"]).pay_level == Decimal(r["per_head"])
    reloads_nothing(app, inputs.load_pay_levels, path)


@sqlite_only  # the file's reading; both backends: test_pay_levels_load_and_reload
def test_pay_levels_chinese_headers_and_mistakes(loaded: Dangliang, tmp_path: Path) -> None:
    good = write(tmp_path / "人均收入.csv", PAY_LEVELS, [["C12", "2024", "98500.50"]], chinese=True)
    assert load(loaded, inputs.load_pay_levels, good).events == 2
    assert year_of(loaded, "C12").pay_level == Decimal("98500.50")

    head = loaded.log.head()
    bad = write(
        tmp_path / "pay_levels.csv",
        PAY_LEVELS,
        [
            ["C01", "2024", "abc"],  # 2
            ["C02", "", "150000"],  # 3: no year
            ["NOPE", "2024", "150000"],  # 4
            ["C03", "2024", "150000"],  # 5: good
        ],
    )
    problems = refused(loaded, inputs.load_pay_levels, bad)
    assert cells(problems) == {(2, "per_head"), (3, "year"), (4, "institution_code")}
    assert loaded.log.head() == head


# ---- directive tasks ---------------------------------------------------------------------


def test_tasks_load_and_reload(loaded: Dangliang, county: GeneratedCounty) -> None:
    app = loaded
    path = county.files["tasks"]
    rows = read_rows(path)
    centres = {r["institution_code"] for r in rows}
    result = load(app, inputs.load_tasks, path)
    assert result.rows == len(rows)
    assert result.events == len(centres) + 2 * len(rows)  # opened; assigned and completed
    for r in rows:
        inst = year_of(app, r["institution_code"])
        assert inst.tasks[r["task_code"]] == (r["name"], Decimal(r["amount"]), r["reference"])
        assert inst.completion[r["task_code"]] == Decimal(r["completion"])
    assert {r["completion"] for r in rows} - {"1"}  # one task partly done
    reloads_nothing(app, inputs.load_tasks, path)


@sqlite_only  # the file's reading; both backends: test_tasks_load_and_reload
def test_tasks_chinese_headers_percentages_and_completion_later(
    loaded: Dangliang, tmp_path: Path
) -> None:
    assigned = [
        ["C03", "2024", "T-01", "疫情防控", "120000", "县卫健局文件 1", "80%"],
        ["C03", "2024", "T-02", "对口支援", "50000.5", "县卫健局文件 2", ""],
    ]
    path = write(tmp_path / "任务.csv", TASKS, assigned, chinese=True)
    result = load(loaded, inputs.load_tasks, path)
    assert (result.changed, result.events) == (2, 1 + 2 + 1)
    inst = year_of(loaded, "C03")
    assert inst.tasks == {
        "T-01": ("疫情防控", Decimal("120000.00"), "县卫健局文件 1"),
        "T-02": ("对口支援", Decimal("50000.50"), "县卫健局文件 2"),
    }
    assert inst.completion == {"T-01": Decimal("0.8")}  # blank: not reported yet

    # completion reported later: one event; 0.80 and 80% are the same fact
    later = write(
        tmp_path / "tasks.csv",
        TASKS,
        [
            [*assigned[0][:6], "0.80"],
            [*assigned[1][:6], "0.5"],
        ],
    )
    assert load(loaded, inputs.load_tasks, later).events == 1
    assert year_of(loaded, "C03").completion == {"T-01": Decimal("0.8"), "T-02": Decimal("0.5")}
    assert load(loaded, inputs.load_tasks, later).events == 0


@sqlite_only  # the file's reading; both backends: test_tasks_load_and_reload
def test_tasks_bad_file_is_refused_whole(loaded: Dangliang, tmp_path: Path) -> None:
    path = write(
        tmp_path / "tasks.csv",
        TASKS,
        [
            ["C01", "2024", "T1", "疫情防控", "1000", "文件", "1"],  # 2: good
            ["C01", "2024", "T2", "对口支援", "1000", "文件", "120%"],  # 3: above 100%
            ["C01", "2024", "T 3", "", "x", "文件", ""],  # 4: code, name, amount
            ["C01", "2024", "T4", "处置", "1000", "", "0.12345"],  # 5: reference, places
            ["C77", "2024", "T5", "处置", "1000", "文件", "1"],  # 6: unknown institution
            ["C01", "2024", "T1", "疫情防控", "2000", "文件", "1"],  # 7: same task as row 2
        ],
    )
    problems = refused(loaded, inputs.load_tasks, path)
    assert cells(problems) == {
        (3, "completion"),
        (4, "task_code"),
        (4, "name"),
        (4, "amount"),
        (5, "reference"),
        (5, "completion"),
        (6, "institution_code"),
        (7, "institution_code"),
    }
    assert "between 0 and 1" in message(problems, 3, "completion")
    assert "at most 4 decimal places" in message(problems, 5, "completion")


@sqlite_only  # the file's reading; both backends: test_tasks_load_and_reload
def test_tasks_from_json_lines(loaded: Dangliang, tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        '{"institution_code":"C05","year":2024,"task_code":"T9","name":"疫情防控",'
        '"amount":20000.5,"reference":"文件","completion":0.25}\n'
        '{"机构编码":"C05","年度":"2024","任务编码":"T10","任务名称":"对口支援",'
        '"任务金额":"100","下达依据":"文件"}\n',
        encoding="utf-8",
    )
    assert load(loaded, inputs.load_tasks, path).events == 1 + 2 + 1
    inst = year_of(loaded, "C05")
    assert inst.tasks["T9"] == ("疫情防控", Decimal("20000.50"), "文件")
    assert inst.completion == {"T9": Decimal("0.25")}


# ---- force majeure -----------------------------------------------------------------------


def test_force_majeure_loads_and_reloads(loaded: Dangliang, county: GeneratedCounty) -> None:
    app = loaded
    path = county.files["force_majeure"]
    [row] = read_rows(path)
    result = load(app, inputs.load_force_majeure, path)
    assert (result.rows, result.changed, result.events) == (1, 1, 1)
    declared: ForceMajeure = app.log.repository.get(force_majeure_id(row["code"]))
    assert declared.first_month == date.fromisoformat(f"{row['first_month']}-01")
    assert declared.last_month == date.fromisoformat(f"{row['last_month']}-01")
    assert declared.institutions == sorted(row["institutions"].split(";"))
    assert 2 <= len(declared.institutions) <= 3
    assert (declared.reason, declared.reference) == (row["reason"], row["reference"])
    reloads_nothing(app, inputs.load_force_majeure, path)


@sqlite_only  # the file's reading; both backends: test_force_majeure_loads_and_reloads
def test_force_majeure_chinese_headers_separators_and_amendment(
    loaded: Dangliang, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "不可抗力.csv",
        FORCE_MAJEURE,
        [
            ["FM-A", "2024-02", "2024/3", "C05、C01；C02，C02", "疫情", "县政府认定 1"],
            ["FM-B", "202407", "202407", "", "台风", "县政府认定 2"],  # blank: every institution
        ],
        chinese=True,
    )
    assert load(loaded, inputs.load_force_majeure, path).events == 2
    a: ForceMajeure = loaded.log.repository.get(force_majeure_id("FM-A"))
    b: ForceMajeure = loaded.log.repository.get(force_majeure_id("FM-B"))
    assert (a.first_month, a.last_month, a.institutions) == (
        date(2024, 2, 1),
        date(2024, 3, 1),
        ["C01", "C02", "C05"],
    )
    assert (b.first_month, b.last_month, b.institutions) == (date(2024, 7, 1), date(2024, 7, 1), [])

    amended = write(
        tmp_path / "force_majeure.csv",
        FORCE_MAJEURE,
        [["FM-A", "2024-02", "2024-04", "C01;C02;C05", "疫情（延长）", "县政府认定 1-补"]],
    )
    head = loaded.log.head()
    assert load(loaded, inputs.load_force_majeure, amended).events == 1
    a = loaded.log.repository.get(force_majeure_id("FM-A"))
    assert (a.last_month, a.reason, a.reference) == (
        date(2024, 4, 1),
        "疫情（延长）",
        "县政府认定 1-补",
    )
    assert loaded.log.head() == head + 1


@sqlite_only  # the file's reading; both backends: test_force_majeure_loads_and_reloads
def test_force_majeure_bad_file_is_refused_whole(loaded: Dangliang, tmp_path: Path) -> None:
    path = write(
        tmp_path / "force_majeure.csv",
        FORCE_MAJEURE,
        [
            ["FM1", "2024-03", "2024-02", "C01", "疫情", "认定"],  # 2: ends before it starts
            ["FM2", "2024-03", "2024-04", "C01;X1;C02;Y2", "疫情", "认定"],  # 3: two unknown
            ["FM3", "2024-3-15", "2024-04", "", "", "认定"],  # 4: a day; no reason
            ["FM4", "2024-03", "2024-04", "C01", "疫情", "认定"],  # 5: good
            ["FM4", "2024-05", "2024-06", "C01", "疫情", "认定"],  # 6: same code as row 5
        ],
    )
    problems = refused(loaded, inputs.load_force_majeure, path)
    assert cells(problems) == {
        (2, "last_month"),
        (3, "institutions"),
        (4, "first_month"),
        (4, "reason"),
        (6, "code"),
    }
    assert "before first_month" in message(problems, 2, "last_month")
    unknown = [p.message_en for p in problems if p.row == 3]
    assert unknown == ["unknown institution code 'X1'", "unknown institution code 'Y2'"]


# ---- policy parameter changes ------------------------------------------------------------


@pytest.fixture
def tree() -> ParameterTree:
    return load_builtin_bundle("zhuji")


def adopt(app: Dangliang, tree: ParameterTree) -> None:
    policy = CountyPolicy.establish(actor=ACTOR)
    policy.adopt(
        bundle_name="zhuji",
        canonical_json=tree.canonical_json(),
        digest=tree.digest(),
        reference="test",
        actor=ACTOR,
    )
    app.log.save(policy)


def load_changes(app: Dangliang, tree: ParameterTree, path: Path) -> LoadResult:
    return inputs.load_parameter_changes(app.log, tree, path, ACTOR)


CHANGES = [
    ["unit_price.basic_medical", "13.00", "2024-07-01", "价格调整", "县卫健局、财政局"],
    ["assessment.pass_score", "65", "2024-03-15", "考核从严", "县卫健局"],
    ["basic_medical_growth_cap", "null", "2024-01-01", "取消增长上限", "县财政局"],
    ["income_offset", "true", "2024-01-01", "启用收入抵扣", "县财政局"],
]


def test_parameter_changes_load_and_reload(
    app: Dangliang, tree: ParameterTree, tmp_path: Path
) -> None:
    adopt(app, tree)
    path = write(tmp_path / "changes.csv", PARAMETER_CHANGES, CHANGES)
    head = app.log.head()
    result = load_changes(app, tree, path)
    assert (result.rows, result.changed, result.events) == (4, 4, 4)
    assert app.log.head() == head + 4
    policy: CountyPolicy = app.log.repository.get(county_policy_id())
    assert policy.changes == {
        ("unit_price.basic_medical", date(2024, 7, 1)): '"13"',
        ("assessment.pass_score", date(2024, 3, 15)): '"65"',
        ("basic_medical_growth_cap", date(2024, 1, 1)): "null",
        ("income_offset", date(2024, 1, 1)): "true",
    }
    again = load_changes(app, tree, path)
    assert (again.changed, again.events) == (0, 0)
    assert app.log.head() == head + 4


@sqlite_only  # the file's reading; both backends: test_parameter_changes_load_and_reload
def test_parameter_changes_with_chinese_headers(
    app: Dangliang, tree: ParameterTree, tmp_path: Path
) -> None:
    adopt(app, tree)
    path = write_table(
        tmp_path / "参数调整.csv",
        ["参数路径", "新值", "生效日期", "调整原因", "批准人"],
        [["unit_price.basic_public_health", "10.50", "2024/9/1", "重大项目", "县财政局"]],
    )
    assert load_changes(app, tree, path).events == 1
    policy: CountyPolicy = app.log.repository.get(county_policy_id())
    assert policy.changes == {("unit_price.basic_public_health", date(2024, 9, 1)): '"10.5"'}


@sqlite_only  # the file's reading; both backends: test_parameter_changes_load_and_reload
def test_parameter_changes_need_an_adopted_policy(
    app: Dangliang, tree: ParameterTree, tmp_path: Path
) -> None:
    path = write(tmp_path / "changes.csv", PARAMETER_CHANGES, CHANGES)
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        load_changes(app, tree, path)
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.column) == (str(path), None, None)
    assert "尚未采用政策参数包" in problem.message_zh
    assert "adopt a policy bundle first: dangliang policy load FILE" in problem.message_en
    assert app.log.head() == head


@sqlite_only  # the file's reading; both backends: test_parameter_changes_load_and_reload
def test_parameter_changes_bad_file_is_refused_whole(
    app: Dangliang, tree: ParameterTree, tmp_path: Path
) -> None:
    adopt(app, tree)
    path = write(
        tmp_path / "changes.csv",
        PARAMETER_CHANGES,
        [
            CHANGES[0],  # 2: good
            ["unit_price.basic_medicl", "13", "2024-07-01", "调价", "局"],  # 3: no such path
            ["unit_price", "13", "2024-07-01", "调价", "局"],  # 4: a group
            ["unit_price.basic_public_health", "abc", "2024-07-15", "调价", "局"],  # 5: two
            ["income_offset", "maybe", "2024-01-01", "调整", "局"],  # 6: not a switch
            ["remote_adjustment.benchmark_per_head", "-1", "2024-01-01", "调价", "局"],  # 7
            ["pricing.mode", "fixed", "2024-07-01", "", ""],  # 8: no reason, no approver
            ["unit_price.basic_medical", "14", "2024-07-01", "调价", "局"],  # 9: same as row 2
        ],
    )
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        load_changes(app, tree, path)
    assert app.log.head() == head
    problems = caught.value.problems
    assert cells(problems) == {
        (3, "path"),
        (4, "path"),
        (5, "value"),
        (5, "effective_from"),
        (6, "value"),
        (7, "value"),
        (8, "reason"),
        (8, "approver"),
        (9, "path"),
    }
    assert "did you mean: unit_price.basic_medical" in message(problems, 3, "path")
    assert "is a group" in message(problems, 4, "path")
    assert "must be a number" in message(problems, 5, "value")
    assert "1st of a month" in message(problems, 5, "effective_from")
    assert "true or false" in message(problems, 6, "value")
    assert "must not be negative" in message(problems, 7, "value")
    assert "required" in message(problems, 8, "approver")
    assert "same as row 2" in message(problems, 9, "path")


# ---- performance pay: pools, personal coefficients, items outside the pool ---------------


def staff_year_of(app: Dangliang, staff_id: str, year: int = YEAR) -> StaffYear:
    found: StaffYear = app.log.repository.get(staff_year_id(staff_id, year))
    return found


def load_pools(app: Dangliang, tree: ParameterTree, path: Path, actor: str = ACTOR) -> LoadResult:
    return pay_inputs.load_pools(app.log, app.registry(), tree, path, actor)


def test_pools_load_and_reload(
    loaded: Dangliang, county: GeneratedCounty, tree: ParameterTree
) -> None:
    app = loaded
    adopt(app, tree)
    path = county.files["pools"]
    rows = read_rows(path)
    centres = [r for r in rows if r["surplus"]]
    directors = [r for r in rows if r["director_staff_id"]]
    assert len(centres) == len(directors) == 12
    head = app.log.head()
    result = load_pools(app, tree, path)
    assert (result.rows, result.changed) == (139, 139)
    # each institution-year opened and its pool approved; centres: surplus and director too
    assert result.events == 2 * 139 + len(centres) + len(directors)
    assert app.log.head() == head + result.events
    for r in [*rows[:3], *centres[:2]]:
        inst = year_of(app, r["institution_code"])
        assert inst.pool == (Decimal(r["pool"]), Decimal(r["reward_share"]), r["reference"])
        if r["surplus"]:
            assert inst.surplus == (Decimal(r["surplus"]), Decimal(r["surplus_share"]))
            assert inst.director == r["director_staff_id"]
        else:
            assert (inst.surplus, inst.director) == (None, None)
    head = app.log.head()
    again = load_pools(app, tree, path, actor="someone else")
    assert (again.rows, again.changed, again.events) == (139, 0, 0)
    assert app.log.head() == head


@sqlite_only  # the file's reading; both backends: test_pools_load_and_reload
def test_pools_with_chinese_headers_and_percentages(
    loaded: Dangliang, tree: ParameterTree, tmp_path: Path
) -> None:
    adopt(loaded, tree)
    path = write_table(
        tmp_path / "绩效工资总量.csv",
        [
            "机构编码",
            "年度",
            "核定绩效工资总量",
            "奖励性绩效工资占比",
            "收支结余",
            "结余再分配比例",
            "院长工号",
            "核定依据",
        ],
        [
            ["C01", "2024", "2400000", "65%", "500000", "50%", "S00001", "核定文件 1"],
            ["C01V01", "2024", "45000.5", "0.6", "", "", "", "核定文件 1"],
        ],
    )
    assert load_pools(loaded, tree, path).events == 2 + 4
    c01, clinic = year_of(loaded, "C01"), year_of(loaded, "C01V01")
    assert c01.pool == (Decimal("2400000"), Decimal("0.65"), "核定文件 1")
    assert c01.surplus == (Decimal("500000"), Decimal("0.5"))
    assert c01.director == "S00001"
    assert clinic.pool == (Decimal("45000.50"), Decimal("0.6"), "核定文件 1")

    # a new reward share is one event; the surplus and director stay
    changed = write(
        tmp_path / "pools.csv",
        POOLS,
        [["C01", "2024", "2400000", "0.7", "500000", "0.5", "S00001", "核定文件 1"]],
    )
    assert load_pools(loaded, tree, changed).events == 1
    assert year_of(loaded, "C01").pool == (Decimal("2400000"), Decimal("0.7"), "核定文件 1")


@sqlite_only  # the file's reading; both backends: test_pools_load_and_reload
def test_pools_need_an_adopted_policy(
    loaded: Dangliang, county: GeneratedCounty, tree: ParameterTree
) -> None:
    head = loaded.log.head()
    with pytest.raises(ProblemsFound) as caught:
        load_pools(loaded, tree, county.files["pools"])
    [problem] = caught.value.problems
    assert (problem.row, problem.column) == (None, None)
    assert "adopt a policy bundle first" in problem.message_en
    assert loaded.log.head() == head


@sqlite_only  # the file's reading; both backends: test_pools_load_and_reload
def test_pools_bad_file_is_refused_whole(
    loaded: Dangliang, tree: ParameterTree, tmp_path: Path
) -> None:
    adopt(loaded, tree)
    ok = ["C01", "2024", "2400000", "0.65", "500000", "0.5", "S00001", "核定文件"]
    path = write(
        tmp_path / "pools.csv",
        POOLS,
        [
            ok,  # 2: good
            ["C02", "2024", "2400000", "0.55", "", "", "", "核定文件"],  # 3: reward share low
            ["C03", "2024", "2400000", "0.65", "500000", "0.7", "", "核定文件"],  # 4: too much
            ["C04", "2024", "2400000", "0.65", "500000", "", "", "核定文件"],  # 5: no share
            ["C05", "2024", "2400000", "0.65", "", "", "S99999", "核定文件"],  # 6: unknown
            ["X9", "2024", "2400000", "0.65", "", "", "", "核定文件"],  # 7: unknown institution
            ["C06", "2020", "2400000", "0.65", "", "", "", "核定文件"],  # 8: before the bundle
            ["C01", "2024", "2500000", "0.65", "", "", "", "核定文件"],  # 9: same as row 2
            ["C07", "2024", "2400000", "0.65", "", "0.5", "", "核定文件"],  # 10: share alone
            ["C08", "2024", "-1", "0.65", "", "", "", ""],  # 11: negative pool; no reference
        ],
    )
    problems = refused_with(loaded, lambda p: load_pools(loaded, tree, p), path)
    assert cells(problems) == {
        (3, "reward_share"),
        (4, "surplus_share"),
        (5, "surplus_share"),
        (6, "director_staff_id"),
        (7, "institution_code"),
        (8, "year"),
        (9, "institution_code"),
        (10, "surplus"),
        (11, "pool"),
        (11, "reference"),
    }
    low = message(problems, 3, "reward_share")
    assert "诸暨方案 二(四)2" in low and "「奖励性绩效工资占比绩效总额不低于60%」" in low
    assert "below the minimum 0.60" in low
    assert "outside 0.40–0.60" in message(problems, 4, "surplus_share")
    assert "required when a surplus is given" in message(problems, 5, "surplus_share")
    assert "unknown staff id 'S99999'" in message(problems, 6, "director_staff_id")
    assert "must not be negative" in message(problems, 11, "pool")
    assert "unknown institution code 'X9'" in message(problems, 7, "institution_code")
    assert "no value in force on 2020-01-01" in message(problems, 8, "year")
    assert "same as row 2" in message(problems, 9, "institution_code")


def refused_with(app: Dangliang, loader: Callable[[Path], LoadResult], path: Path) -> list[Problem]:
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        loader(path)
    assert app.log.head() == head
    problems = caught.value.problems
    assert all(p.file == str(path) for p in problems)
    return problems


def test_staff_coefficients_load_and_reload(loaded: Dangliang, county: GeneratedCounty) -> None:
    app = loaded
    path = county.files["staff_coefficients"]
    rows = read_rows(path)
    result = load(app, pay_inputs.load_staff_coefficients, path)
    assert (result.rows, result.changed, result.events) == (len(rows), len(rows), 2 * len(rows))
    for r in rows[:3]:
        person = staff_year_of(app, r["staff_id"])
        assert (person.staff_id, person.year) == (r["staff_id"], YEAR)
        assert person.coefficient == (Decimal(r["coefficient"]), r["reference"])
    reloads_nothing(app, pay_inputs.load_staff_coefficients, path)

    fixed = write_table(
        Path(path).with_name("个人考核系数.csv"),
        ["工号", "年度", "个人考核系数", "考核依据"],
        [[rows[0]["staff_id"], str(YEAR), "1.3", rows[0]["reference"]]],
    )
    assert load(app, pay_inputs.load_staff_coefficients, fixed).events == 1
    assert staff_year_of(app, rows[0]["staff_id"]).coefficient == (
        Decimal("1.3"),
        rows[0]["reference"],
    )


@sqlite_only  # the file's reading; both backends: test_staff_coefficients_load_and_reload
def test_staff_coefficients_bad_file_is_refused_whole(loaded: Dangliang, tmp_path: Path) -> None:
    path = write(
        tmp_path / "coefficients.csv",
        STAFF_COEFFICIENTS,
        [
            ["S00001", "2024", "1.05", "考核"],  # 2: good
            ["S99999", "2024", "1.05", "考核"],  # 3: unknown staff
            ["S00002", "2024", "5.5", "考核"],  # 4: above 5
            ["S00003", "2024", "abc", ""],  # 5: not a number; no reference
            ["S00001", "2024", "0.9", "考核"],  # 6: same as row 2
            ["S00004", "24", "1", "考核"],  # 7: not a year
        ],
    )
    problems = refused(loaded, pay_inputs.load_staff_coefficients, path)
    assert cells(problems) == {
        (3, "staff_id"),
        (4, "coefficient"),
        (5, "coefficient"),
        (5, "reference"),
        (6, "staff_id"),
        (7, "year"),
    }
    assert "unknown staff id 'S99999'" in message(problems, 3, "staff_id")
    assert "between 0 and 5" in message(problems, 4, "coefficient")
    assert "not a valid number" in message(problems, 5, "coefficient")


def test_outside_items_load_and_reload(loaded: Dangliang, county: GeneratedCounty) -> None:
    app = loaded
    path = county.files["outside_items"]
    rows = read_rows(path)
    people = {r["staff_id"] for r in rows}
    result = load(app, pay_inputs.load_outside_items, path)
    assert (result.rows, result.changed) == (len(rows), len(rows))
    assert result.events == len(people) + len(rows)  # each staff-year opened once
    assert {r["kind"] for r in rows} == set(OUTSIDE_KINDS)
    for r in rows[:5]:
        person = staff_year_of(app, r["staff_id"])
        assert person.outside[r["kind"]] == (Decimal(r["amount"]), r["reference"])
    reloads_nothing(app, pay_inputs.load_outside_items, path)


@sqlite_only  # the file's reading; both backends: test_outside_items_load_and_reload
def test_outside_items_with_chinese_headers_and_labels(loaded: Dangliang, tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "总量外项目.csv",
        ["工号", "年度", "项目", "金额", "依据"],
        [
            ["S00001", "2024", "家庭医生签约服务费", "8000", "签约结算"],
            ["S00001", "2024", "Epidemic_Allowance", "3200.5", "防疫补贴"],
        ],
    )
    assert load(loaded, pay_inputs.load_outside_items, path).events == 3
    assert staff_year_of(loaded, "S00001").outside == {
        "family_doctor_fee": (Decimal("8000"), "签约结算"),
        "epidemic_allowance": (Decimal("3200.50"), "防疫补贴"),
    }


@sqlite_only  # the file's reading; both backends: test_outside_items_load_and_reload
def test_outside_items_bad_file_is_refused_whole(loaded: Dangliang, tmp_path: Path) -> None:
    path = write(
        tmp_path / "outside.csv",
        OUTSIDE_ITEMS,
        [
            ["S00001", "2024", "family_doctor_fee", "8000", "签约"],  # 2: good
            ["S00002", "2024", "overtime", "500", "加班"],  # 3: unknown kind
            ["S00003", "2024", "epidemic_allowance", "12.345", "补贴"],  # 4: three places
            ["S00004", "2024", "epidemic_allowance", "-5", "补贴"],  # 5: negative
            ["S99999", "2024", "epidemic_allowance", "500", "补贴"],  # 6: unknown staff
            ["S00001", "2024", "家庭医生签约服务费", "9000", "签约"],  # 7: same as row 2
        ],
    )
    problems = refused(loaded, pay_inputs.load_outside_items, path)
    assert cells(problems) == {
        (3, "kind"),
        (4, "amount"),
        (5, "amount"),
        (6, "staff_id"),
        (7, "staff_id"),
    }
    assert "family_doctor_fee, epidemic_allowance" in message(problems, 3, "kind")
    assert "at most 2 decimal places" in message(problems, 4, "amount")
    assert "must not be negative" in message(problems, 5, "amount")
    assert "same as row 2" in message(problems, 7, "staff_id")
