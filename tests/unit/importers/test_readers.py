"""Unit tests for the streaming table readers (CSV, XLSX, JSON lines)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from dangliang.domain.problems import Problem
from dangliang.importers.formats import CATALOGUE, SERVICES, FileFormat
from dangliang.importers.readers import open_table
from dangliang.importers.table_reader import TableReader

EN_HEADER = (
    "source_id,institution_code,staff_id,item_code,quantity,service_date,patient_ref,compliant"
)
ZH_HEADER = "来源编号,机构编码,人员编号,项目编码,数量,服务日期,患者标识,是否达标"
ROW_A = "S1,I01,ST1,IT1,2,2024-03-01,P1,是"
ROW_B = "S2,I01,ST2,IT2,1.10,2024-03-02,,否"

EXPECTED_A = {
    "source_id": "S1",
    "institution_code": "I01",
    "staff_id": "ST1",
    "item_code": "IT1",
    "quantity": "2",
    "service_date": "2024-03-01",
    "patient_ref": "P1",
    "compliant": "是",
}
EXPECTED_B = {
    "source_id": "S2",
    "institution_code": "I01",
    "staff_id": "ST2",
    "item_code": "IT2",
    "quantity": "1.10",
    "service_date": "2024-03-02",
    "patient_ref": None,
    "compliant": "否",
}


def write(tmp_path: Path, name: str, data: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def read_all(
    path: Path | str, fmt: FileFormat = SERVICES
) -> tuple[TableReader, list[tuple[int, dict]]]:
    reader = open_table(path, fmt)
    rows = list(reader)
    return reader, rows


def messages(reader: TableReader) -> str:
    return "\n".join(str(p) for p in reader.problems)


# --------------------------------------------------------------------------------------- CSV


def test_utf8_csv_yields_canonical_rows_with_spreadsheet_row_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", f"{EN_HEADER}\n{ROW_A}\n{ROW_B}\n")
    reader, rows = read_all(path)
    assert reader.problems == []
    assert reader.ignored_columns == []
    assert rows == [(2, EXPECTED_A), (3, EXPECTED_B)]
    assert reader.display_name == str(path)
    # values are text, never numbers
    assert all(v is None or isinstance(v, str) for _, row in rows for v in row.values())


def test_utf8_bom_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", b"\xef\xbb\xbf" + f"{ZH_HEADER}\r\n{ROW_A}\r\n".encode())
    reader, rows = read_all(path)
    assert reader.problems == []
    assert rows == [(2, EXPECTED_A)]


def test_gb18030_csv_with_chinese_headers(tmp_path: Path) -> None:
    text = f"{ZH_HEADER}\n{ROW_A}\nS3,I02,ST3,IT3,1,2024-03-05,张三,达标\n"
    path = write(tmp_path, "s.csv", text.encode("gb18030"))
    reader, rows = read_all(path)
    assert reader.problems == []
    assert rows[0] == (2, EXPECTED_A)
    assert rows[1][0] == 3
    assert rows[1][1]["patient_ref"] == "张三"
    assert rows[1][1]["compliant"] == "达标"


def test_undecodable_encoding_is_a_file_problem(tmp_path: Path) -> None:
    # 0xff is neither UTF-8 nor a GB18030 lead byte.
    path = write(tmp_path, "s.csv", EN_HEADER.encode() + b"\n\xff\xfe\xff,\xff\xff\n")
    reader, rows = read_all(path)
    assert rows == []
    assert len(reader.problems) == 1
    problem = reader.problems[0]
    assert problem.file == str(path)
    assert "无法识别文件编码" in problem.message_zh
    assert "cannot tell the file's encoding" in problem.message_en


def test_late_decode_error_reports_its_row_and_keeps_earlier_rows(tmp_path: Path) -> None:
    # Well past the 64 KB sniffed at open, a byte that is not UTF-8.
    good = [f"S{i},I01,ST1,IT1,1,2024-03-01,,是" for i in range(4000)]  # ~130 KB
    data = (EN_HEADER + "\n" + "\n".join(good) + "\n").encode()
    data += b"S-bad,I01,ST1,IT\xff1,1,2024-03-01,,\n" + b"S-after,I01,ST1,IT1,1,2024-03-01,,\n"
    assert len(data) > 64 * 1024 * 1.5
    path = write(tmp_path, "s.csv", data)
    reader, rows = read_all(path)
    bad_row = 2 + len(good)
    assert [n for n, _ in rows] == list(range(2, bad_row))  # every good row before it
    assert rows[-1][1]["source_id"] == "S3999"
    assert len(reader.problems) == 1
    problem = reader.problems[0]
    assert problem.row == bad_row
    assert problem.column is None
    assert f"第{bad_row}行无法按 utf-8 解码" in problem.message_zh
    assert f"cannot decode row {bad_row} as utf-8" in problem.message_en
    assert "0xff" in problem.message_en
    assert reader.progress()[0] == reader.progress()[1]


def test_mixed_chinese_english_alias_headers_with_case_and_space_variations(tmp_path: Path) -> None:
    header = " HIS编号 ,Institution_Code,工 号,项目编码, QUANTITY ,服务日期,备注"
    path = write(tmp_path, "s.csv", f"{header}\nS1,I01,ST1,IT1,2,2024-03-01,note\n")
    reader, rows = read_all(path)
    assert reader.problems == []
    assert reader.ignored_columns == ["备注"]
    assert rows == [
        (
            2,
            {
                "source_id": "S1",
                "institution_code": "I01",
                "staff_id": "ST1",
                "item_code": "IT1",
                "quantity": "2",
                "service_date": "2024-03-01",
                "patient_ref": None,  # absent optional column
                "compliant": None,
            },
        )
    ]
    # the dict follows the format's column order
    assert list(rows[0][1]) == list(SERVICES.column_names)


def test_missing_required_columns_are_all_reported_on_row_1(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", "source_id,机构编码,staff_id,item_code\nS1,I01,ST1,IT1\n")
    reader, rows = read_all(path)
    assert rows == []
    assert [(p.row, p.column) for p in reader.problems] == [
        (1, "quantity"),
        (1, "service_date"),
    ]
    assert reader.problems[0].message_zh == "缺少必填列 'quantity'（数量）"
    assert reader.problems[0].message_en == "missing required column 'quantity'"


def test_duplicate_columns(tmp_path: Path) -> None:
    header = EN_HEADER + ",数量"
    path = write(tmp_path, "s.csv", f"{header}\n{ROW_A},3\n")
    reader, rows = read_all(path)
    assert rows == []
    assert len(reader.problems) == 1
    problem = reader.problems[0]
    assert (problem.row, problem.column) == (1, "quantity")
    assert "列重复" in problem.message_zh
    assert "duplicate column" in problem.message_en


def test_extra_cells_are_a_row_problem_and_other_rows_still_read(tmp_path: Path) -> None:
    text = f"{EN_HEADER}\n{ROW_A},surprise\n{ROW_B}\n{ROW_A},,  \n"
    path = write(tmp_path, "s.csv", text)
    reader, rows = read_all(path)
    # row 2 has a value past the last header; row 4 only has blank extra cells: fine
    assert [n for n, _ in rows] == [3, 4]
    assert rows[1][1] == EXPECTED_A
    assert len(reader.problems) == 1
    problem = reader.problems[0]
    assert (problem.row, problem.column) == (2, None)
    assert "多余的单元格" in problem.message_zh
    assert "more cells than headers" in problem.message_en


def test_fewer_cells_give_none(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", f"{EN_HEADER}\nS1,I01,ST1,IT1,2,2024-03-01\n")
    reader, rows = read_all(path)
    assert reader.problems == []
    assert rows[0][1]["patient_ref"] is None and rows[0][1]["compliant"] is None


def test_blank_rows_are_skipped_and_row_numbers_match_the_spreadsheet(tmp_path: Path) -> None:
    text = f"{EN_HEADER}\n\n{ROW_A}\n , ,,\t,,,,\n,,,,,,,\n{ROW_B}\n\n"
    path = write(tmp_path, "s.csv", text)
    reader, rows = read_all(path)
    assert reader.problems == []
    assert rows == [(3, EXPECTED_A), (6, EXPECTED_B)]


def test_whitespace_is_stripped_and_blank_cells_are_none(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", f"{EN_HEADER}\n  S1 ,I01,ST1,IT1, 2 ,2024-03-01,   , \n")
    _reader, rows = read_all(path)
    row = rows[0][1]
    assert row["source_id"] == "S1"
    assert row["quantity"] == "2"
    assert row["patient_ref"] is None
    assert row["compliant"] is None


def test_quoted_newline_counts_records(tmp_path: Path) -> None:
    text = f'{EN_HEADER}\nS1,I01,ST1,IT1,2,2024-03-01,"line one\nline two",是\n{ROW_B}\n'
    path = write(tmp_path, "s.csv", text)
    reader, rows = read_all(path)
    assert reader.problems == []
    assert [n for n, _ in rows] == [2, 3]  # records, not physical lines
    assert rows[0][1]["patient_ref"] == "line one\nline two"
    assert rows[1][1] == EXPECTED_B


def test_tab_delimited(tmp_path: Path) -> None:
    text = EN_HEADER.replace(",", "\t") + "\n" + ROW_A.replace(",", "\t") + "\n"
    path = write(tmp_path, "s.tsv", text)
    reader, rows = read_all(path)
    assert reader.problems == []
    assert rows == [(2, EXPECTED_A)]
    # the same file with a .txt extension works too
    reader, rows = read_all(write(tmp_path, "s.txt", text))
    assert rows == [(2, EXPECTED_A)]


def test_empty_csv_and_csv_without_header(tmp_path: Path) -> None:
    reader, rows = read_all(write(tmp_path, "empty.csv", b""))
    assert rows == []
    assert len(reader.problems) == 1 and "empty" in reader.problems[0].message_en
    assert reader.progress() == (0, 0)

    reader, rows = read_all(write(tmp_path, "noheader.csv", f"\n{ROW_A}\n"))
    assert rows == []
    assert [(p.row, p.message_en) for p in reader.problems] == [(1, "row 1 has no header")]


def test_header_only_csv_is_fine(tmp_path: Path) -> None:
    reader, rows = read_all(write(tmp_path, "s.csv", EN_HEADER + "\n"))
    assert reader.problems == []
    assert rows == []


def test_missing_file_is_a_file_problem(tmp_path: Path) -> None:
    reader, rows = read_all(tmp_path / "nope.csv")
    assert rows == []
    assert len(reader.problems) == 1
    assert "cannot open the file" in reader.problems[0].message_en


def test_csv_progress_reaches_total(tmp_path: Path) -> None:
    body = "".join(f"S{i},I01,ST1,IT1,1,2024-03-01,,是\n" for i in range(20000))
    path = write(tmp_path, "s.csv", EN_HEADER + "\n" + body)
    reader = open_table(path, SERVICES)
    size = path.stat().st_size
    assert reader.progress() == (0, size)
    seen = []
    for i, _ in enumerate(reader):
        if i % 5000 == 0:
            seen.append(reader.progress()[0])
    assert seen == sorted(seen)
    assert 0 < seen[1] < size
    assert reader.progress() == (size, size)


def test_iterating_twice_gives_the_same_rows_and_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", f"{EN_HEADER}\n{ROW_A},extra\n{ROW_B}\n")
    reader = open_table(path, SERVICES)
    first = list(reader)
    problems = list(reader.problems)
    second = list(reader)
    assert first == second == [(3, EXPECTED_B)]
    assert reader.problems == problems


def test_csv_rows_are_streamed_not_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", f"{EN_HEADER}\n{ROW_A}\n{ROW_B}\n")
    reader = open_table(path, SERVICES)
    iterator = iter(reader)
    assert next(iterator) == (2, EXPECTED_A)
    reader.close()


# --------------------------------------------------------------------------------------- XLSX


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row, 1):
            if value is not None:
                sheet.cell(row=r, column=c, value=value)
    workbook.save(path)
    return path


def test_xlsx_values_become_text(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [
            [
                "来源编号",
                "机构编码",
                "工号",
                "项目编码",
                "数量",
                "服务日期",
                "患者标识",
                "是否达标",
            ],
            [101, "I01 ", "ST1", "IT1", 1.1, date(2024, 3, 1), None, True],
            [None, None, None, None, None, None, None, None],  # blank row 3
            ["S2", "I01", "ST2", "IT2", 2.0, datetime(2024, 3, 2, 0, 0), "P2", False],
            ["S3", "I01", "ST3", "IT3", 3, datetime(2024, 3, 3, 14, 30), "  ", None],
            ["S4", "I01", "ST4", "IT4", 12.25, "2024-03-04", None, None],
        ],
    )
    reader, rows = read_all(path)
    assert reader.problems == []
    assert [n for n, _ in rows] == [2, 4, 5, 6]
    first = rows[0][1]
    assert first == {
        "source_id": "101",
        "institution_code": "I01",
        "staff_id": "ST1",
        "item_code": "IT1",
        "quantity": "1.1",
        "service_date": "2024-03-01",
        "patient_ref": None,
        "compliant": "true",
    }
    assert rows[1][1]["quantity"] == "2"
    assert rows[1][1]["service_date"] == "2024-03-02"
    assert rows[1][1]["compliant"] == "false"
    assert rows[2][1]["quantity"] == "3"
    assert rows[2][1]["service_date"] == "2024-03-03T14:30:00"
    assert rows[2][1]["patient_ref"] is None
    assert rows[3][1]["quantity"] == "12.25"
    assert all(v is None or isinstance(v, str) for _, row in rows for v in row.values())
    assert reader.progress() == (6, 6)


def test_xlsx_blank_rows_in_the_middle_keep_row_numbers(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(EN_HEADER.split(","))
    sheet.append(ROW_A.split(","))
    sheet.cell(row=7, column=1, value="S7")  # rows 3-6 never written
    for c, v in enumerate(ROW_B.split(",")[1:], 2):
        sheet.cell(row=7, column=c, value=v or None)
    workbook.save(tmp_path / "s.xlsx")
    reader, rows = read_all(tmp_path / "s.xlsx")
    assert reader.problems == []
    assert [n for n, _ in rows] == [2, 7]
    assert rows[1][1]["source_id"] == "S7"


def test_xlsx_missing_columns_and_extra_cells(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "c.xlsx",
        [
            ["item_code", "name", "category", "unit", "当量值", "生效日期", "政策依据"],
            ["A1", "门诊", "基本医疗", "人次", 1.5, date(2024, 1, 1), "doc", "extra"],
        ],
    )
    reader, rows = read_all(path, CATALOGUE)
    assert rows == []
    assert [(p.row, p.column) for p in reader.problems] == [(2, None)]
    assert "more cells than headers" in reader.problems[0].message_en

    path = write_xlsx(tmp_path / "c2.xlsx", [["item_code", "name"], ["A1", "门诊"]])
    reader, rows = read_all(path, CATALOGUE)
    assert rows == []
    assert [p.column for p in reader.problems] == [
        "category",
        "unit",
        "equivalent_value",
        "effective_from",
        "reference",
    ]
    assert all(p.row == 1 for p in reader.problems)


def test_corrupt_xlsx_is_a_file_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "s.xlsx", b"this is not a zip file at all")
    reader, rows = read_all(path)
    assert rows == []
    assert len(reader.problems) == 1
    assert "无法读取 Excel 文件" in reader.problems[0].message_zh
    assert "cannot read the Excel file" in reader.problems[0].message_en


def test_empty_xlsx_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "s.xlsx", [])
    reader, rows = read_all(path)
    assert rows == []
    assert len(reader.problems) == 1


# --------------------------------------------------------------------------------- JSON lines


def test_jsonl_keeps_exact_number_text_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "source_id": "S1",
                "机构编码": "I01",
                "工号": "ST1",
                "item_code": "IT1",
                "quantity": 2,
                "service_date": "2024-03-01",
                "patient_ref": "P1",
                "compliant": "是",
            },
            ensure_ascii=False,
        ),
        '{"source_id": "S2", "institution_code": "I01", "staff_id": "ST2", "item_code": "IT2",'
        ' "quantity": 1.10, "service_date": "2024-03-02", "compliant": true, "note": "x"}',
        "",
        "{not json",
        "[1, 2]",
        '{"source_id": "S5", "quantity": 1e3, "patient_ref": null, "compliant": false}',
        '{"source_id": "S6", "quantity": {"value": 1}}',
    ]
    path = write(tmp_path, "s.jsonl", "\n".join(lines) + "\n")
    reader, rows = read_all(path)
    assert [n for n, _ in rows] == [1, 2, 6]
    assert rows[0][1] == EXPECTED_A
    assert rows[1][1]["quantity"] == "1.10"
    assert rows[1][1]["compliant"] == "true"
    assert rows[1][1]["patient_ref"] is None
    assert rows[2][1]["quantity"] == "1e3"
    assert rows[2][1]["compliant"] == "false"
    assert rows[2][1]["institution_code"] is None  # missing key: the validator's business
    assert list(rows[2][1]) == list(SERVICES.column_names)
    assert reader.ignored_columns == ["note"]
    assert [(p.row, p.column) for p in reader.problems] == [(4, None), (5, None), (7, "quantity")]
    assert "not valid JSON" in reader.problems[0].message_en
    assert "not a JSON object" in reader.problems[1].message_en
    assert "nested" in reader.problems[2].message_en
    size = path.stat().st_size
    assert reader.progress() == (size, size)


def test_jsonl_bom_and_ndjson_extension(tmp_path: Path) -> None:
    line = '{"source_id": "S1", "quantity": "3"}'
    path = write(tmp_path, "s.ndjson", b"\xef\xbb\xbf" + line.encode() + b"\r\n")
    reader, rows = read_all(path)
    assert reader.problems == []
    assert rows[0][0] == 1 and rows[0][1]["quantity"] == "3"


def test_json_array_file_is_a_file_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "s.json", '[\n  {"source_id": "S1"}\n]\n')
    reader, rows = read_all(path)
    assert rows == []
    assert len(reader.problems) == 1 and "JSON array" in reader.problems[0].message_en


def test_jsonl_non_utf8_line(tmp_path: Path) -> None:
    data = b'{"source_id": "S1"}\n{"source_id": "\xff"}\n{"source_id": "S3"}\n'
    reader, rows = read_all(write(tmp_path, "s.jsonl", data))
    assert [n for n, _ in rows] == [1, 3]
    assert [p.row for p in reader.problems] == [2]


# ------------------------------------------------------------------------------------ general


def test_unsupported_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "s.xls", b"whatever")
    reader, rows = read_all(path)
    assert rows == []
    assert len(reader.problems) == 1
    problem = reader.problems[0]
    assert isinstance(problem, Problem)
    assert problem.file == str(path)
    assert "不支持的文件类型" in problem.message_zh
    assert "unsupported file type" in problem.message_en


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_progress_reaches_total_for_small_files(tmp_path: Path, suffix: str) -> None:
    if suffix == ".csv":
        path = write(tmp_path, "s.csv", f"{EN_HEADER}\n{ROW_A}\n")
    else:
        path = write(tmp_path, "s.jsonl", '{"source_id": "S1"}\n')
    reader = open_table(path, SERVICES)
    total = path.stat().st_size
    assert reader.progress()[1] == total
    list(reader)
    assert reader.progress() == (total, total)


def test_late_gb18030_decode_error(tmp_path: Path) -> None:
    body = "".join(f"S{i},I01,ST1,IT1,1,2024-03-01,张三,是\n" for i in range(5000))
    data = (ZH_HEADER + "\n" + body).encode("gb18030")
    data += b"S-bad,I01,ST1,IT1,1,2024-03-01,\x81\x20,x\n" + ROW_A.encode("gb18030") + b"\n"
    reader, rows = read_all(write(tmp_path, "s.csv", data))
    assert len(rows) == 5000 and rows[-1][0] == 5001
    assert [(p.row, p.column) for p in reader.problems] == [(5002, None)]
    assert "as gb18030" in reader.problems[0].message_en


def test_stopping_early_keeps_progress_and_closes(tmp_path: Path) -> None:
    body = "".join(f"S{i},I01,ST1,IT1,1,2024-03-01,,是\n" for i in range(20000))
    path = write(tmp_path, "s.csv", EN_HEADER + "\n" + body)
    reader = open_table(path, SERVICES)
    for i, _ in enumerate(reader):
        if i == 10:
            break
    done, total = reader.progress()
    assert 0 < done < total
    reader.close()
