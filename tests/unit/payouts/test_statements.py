"""Payout-run statements: each format written and read back (XLSX with openpyxl, CSV, JSON)."""

from __future__ import annotations

import copy
import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from freezegun import freeze_time

from dangliang.domain.errors import DomainError, InvalidValue
from dangliang.payouts.statements import write_statement

CHAIN_HEAD = "9f2c" + "0" * 60
COMPONENTS = (
    "basic_medical",
    "basic_public_health",
    "directive_tasks",
    "remote_adjustment",
    "year_end_bonus",
)
CAUSES = [
    "2024-02 basic_medical equivalents 1127.4000 → 1117.4000: 3 service events "
    "(notifications 5001–5003: 2 corrected, 1 voided)",
    "2024-02 unit price basic_medical 12.50 → 12.40 (县卫健局〔2024〕7号)",
]
COMPONENT_HEADERS = ["基本医疗", "基本公卫", "指令性任务", "边缘乡镇调节补助", "年终考核奖（财政）"]


def institution(
    code: str,
    name: str,
    components: tuple[str, ...],
    adjustment_lines: list[dict] | None = None,
    **summary: str,
) -> dict:
    """An institution of a run: components, then total, advances, settlement, adjustments…"""
    return {
        "code": code,
        "name": name,
        "components": dict(zip(COMPONENTS, components, strict=True)),
        **summary,
        "adjustment_lines": adjustment_lines or [],
    }


def base_run(kind: str, period: str, institutions: list[dict], totals: dict) -> dict:
    return {
        "run_id": f"{period}#1",
        "period": period,
        "kind": kind,
        "state": "approved",
        "computed_by": "alice",
        "computed_at": "2025-04-02T09:00:00+00:00",
        "approved_by": "bob",
        "approved_at": "2025-04-03T10:00:00+00:00",
        "paid_reference": None,
        "position": 1234567,
        "position_recorded_at": "2025-04-02T08:59:58+00:00",
        "chain_head": CHAIN_HEAD,
        "policy": {"bundle": "zhuji.yaml", "parameters_digest": "ab12" + "1" * 60},
        "results_digest": "cd34" + "2" * 60,
        "institutions": institutions,
        "totals": totals,
    }


@pytest.fixture
def monthly() -> dict:
    """March advances: C01 with a claw-back from February's recomputation, C02 without."""
    line = {
        "period": "2024-02",
        "run_id": "2024-02#1",
        "paid": "15000.00",
        "new": "14879.65",
        "amount": "-120.35",
        "causes": CAUSES,
    }
    zero = ("0.00", "0.00", "0.00")
    c01 = institution(
        "C01",
        "乾元镇卫生院",
        ("14092.50", "3521.00", *zero),
        total="17613.50",
        advances="14971.48",
        settlement="0.00",
        adjustments="-120.35",
        payable="14851.13",
        adjustment_lines=[line],
    )
    c02 = institution(
        "C02",
        '=HYPERLINK("x")社区卫生服务中心',  # text stays text, never a formula
        ("1000.07", "2000.00", *zero),
        total="3000.07",
        advances="2550.06",
        settlement="0.00",
        adjustments="0.00",
        payable="2550.06",
    )
    totals = {
        "basic_medical": "15092.57",
        "basic_public_health": "5521.00",
        "directive_tasks": "0.00",
        "remote_adjustment": "0.00",
        "year_end_bonus": "0.00",
        "total": "20613.57",
        "advances": "17521.54",
        "settlement": "0.00",
        "adjustments": "-120.35",
        "payable": "17401.19",
    }
    return base_run("monthly_advance", "2024-03", [c01, c02], totals)


@pytest.fixture
def annual() -> dict:
    """Year-end settlement 2024: C01 was over-advanced (negative settlement, a claw-back)."""
    c01 = institution(
        "C01",
        "乾元镇卫生院",
        ("1234567.89", "456789.01", "50000.00", "36000.00", "120000.00"),
        total="1897356.90",
        advances="1950000.00",
        settlement="-52643.10",
        adjustments="0.00",
        payable="-52643.10",
    )
    c02 = institution(
        "C02",
        "洛舍镇卫生院",
        ("300000.00", "200000.00", "0.00", "0.00", "30000.00"),
        total="530000.00",
        advances="500000.00",
        settlement="30000.00",
        adjustments="0.00",
        payable="30000.00",
    )
    totals = {
        "basic_medical": "1534567.89",
        "basic_public_health": "656789.01",
        "directive_tasks": "50000.00",
        "remote_adjustment": "36000.00",
        "year_end_bonus": "150000.00",
        "total": "2427356.90",
        "advances": "2450000.00",
        "settlement": "-22643.10",
        "adjustments": "0.00",
        "payable": "-22643.10",
    }
    run = base_run("annual_settlement", "2024", [c01, c02], totals)
    run.update(state="paid", paid_reference="BANK-2025-0042", illustrative=True)
    return run


# ---------------------------------------------------------------- reading an XLSX back


def fen(value: object) -> Decimal:
    """A number read from the sheet, to the fen."""
    assert isinstance(value, int | float), value
    return Decimal(str(value)).quantize(Decimal("0.01"))


def read_sheet(path: Path, title: str) -> list[tuple[Any, ...]]:
    workbook = openpyxl.load_workbook(path)
    rows = list(workbook[title].iter_rows(values_only=True))
    workbook.close()
    return rows


def header_block(rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """Label (column A) → values (from column C) of the rows above the table."""
    block = {}
    for row in rows[1:]:
        if row[0] == "机构编码":
            break
        if row[0]:
            block[row[0]] = tuple(v for v in row[2:] if v is not None)
    return block


def table(rows: list[tuple[Any, ...]]) -> tuple[list[str], list[tuple[Any, ...]], tuple[Any, ...]]:
    """(headers, institution rows, totals row) of the statement sheet."""
    start = next(n for n, row in enumerate(rows) if row[0] == "机构编码")
    end = next(n for n, row in enumerate(rows) if row[0] == "合计")
    return list(rows[start]), rows[start + 1 : end], rows[end]


def money_values(inst: dict, keys: list[str]) -> list[Decimal]:
    return [Decimal(inst["components"].get(k) or inst[k]) for k in keys]


# ---------------------------------------------------------------- XLSX


def test_xlsx_header_block_names_the_run_position_and_chain_head(
    monthly: dict, tmp_path: Path
) -> None:
    path = write_statement(monthly, tmp_path / "run.xlsx")
    rows = read_sheet(path, "支付单")
    assert rows[0][0] == "基层医疗卫生机构补偿 按月预拨支付单 2024-03"
    block = header_block(rows)
    assert block["批次编号 run id"] == ("2024-03#1",)
    assert block["期间 period"] == ("2024-03",)
    assert block["类型 kind"] == ("按月预拨 monthly advance",)
    assert block["状态 state"] == ("已审核 approved",)
    assert block["计算人 / 时间 computed by / at"] == ("alice", "2025-04-02T09:00:00+00:00")
    assert block["审核人 / 时间 approved by / at"] == ("bob", "2025-04-03T10:00:00+00:00")
    assert block["支付凭证号 paid reference"] == ("—",)
    position = block["日志位置 / 记录时间 log position / recorded at"]
    assert position == (1234567, "2025-04-02T08:59:58+00:00")
    assert block["哈希链头 chain head"] == (CHAIN_HEAD,)
    assert block["政策参数包 policy bundle"] == ("zhuji.yaml",)
    assert block["参数摘要 parameters digest"] == (monthly["policy"]["parameters_digest"],)
    assert block["结果摘要 results digest"] == (monthly["results_digest"],)


def test_xlsx_monthly_table_one_row_per_institution_and_totals(
    monthly: dict, tmp_path: Path
) -> None:
    rows = read_sheet(write_statement(monthly, tmp_path / "run.xlsx"), "支付单")
    headers, institutions, totals = table(rows)
    keys = [*COMPONENTS, "total", "advances", "adjustments", "payable"]
    assert headers == [
        "机构编码",
        "机构名称",
        *COMPONENT_HEADERS,
        "预拨基数",
        "本月预拨",
        "以前期间调整",
        "本次应付",
    ]
    assert [row[:2] for row in institutions] == [
        ("C01", "乾元镇卫生院"),
        ("C02", '=HYPERLINK("x")社区卫生服务中心'),
    ]
    for row, inst in zip(institutions, monthly["institutions"], strict=True):
        assert [fen(v) for v in row[2:]] == money_values(inst, keys)
    assert totals[1] is None
    assert [fen(v) for v in totals[2:]] == [Decimal(monthly["totals"][k]) for k in keys]


def test_xlsx_optional_header_rows_only_when_the_run_has_them(
    monthly: dict, tmp_path: Path
) -> None:
    block = header_block(read_sheet(write_statement(monthly, tmp_path / "a.xlsx"), "支付单"))
    assert not {"审批单号 approval reference", "替代批次 supersedes", "软件版本 software"} & set(
        block
    )
    monthly.update(
        approval_reference="财审〔2025〕12号",
        supersedes="2024-03#0",
        rejected_reason=None,
        software="dangliang 0.1.0",
        rule_set="compensation v1",
    )
    block = header_block(read_sheet(write_statement(monthly, tmp_path / "b.xlsx"), "支付单"))
    assert block["审批单号 approval reference"] == ("财审〔2025〕12号",)
    assert block["替代批次 supersedes"] == ("2024-03#0",)
    assert block["软件版本 software"] == ("dangliang 0.1.0",)
    assert block["规则版本 rule set"] == ("compensation v1",)
    assert "退回原因 rejected reason" not in block


def test_xlsx_annual_table_has_the_settlement_column(annual: dict, tmp_path: Path) -> None:
    rows = read_sheet(write_statement(annual, tmp_path / "run.xlsx"), "支付单")
    assert rows[0][0] == "基层医疗卫生机构补偿 年终清算支付单 2024"
    assert header_block(rows)["状态 state"] == ("已支付 paid",)
    assert header_block(rows)["支付凭证号 paid reference"] == ("BANK-2025-0042",)
    headers, institutions, totals = table(rows)
    keys = [*COMPONENTS, "total", "advances", "settlement", "adjustments", "payable"]
    assert headers[7:] == ["合计", "已预拨", "清算差额", "以前期间调整", "本次应付"]
    for row, inst in zip(institutions, annual["institutions"], strict=True):
        assert [fen(v) for v in row[2:]] == money_values(inst, keys)
    assert fen(institutions[0][headers.index("清算差额")]) == Decimal("-52643.10")
    assert [fen(v) for v in totals[2:]] == [Decimal(annual["totals"][k]) for k in keys]


def test_xlsx_money_cells_are_numbers_with_the_money_format(monthly: dict, tmp_path: Path) -> None:
    workbook = openpyxl.load_workbook(write_statement(monthly, tmp_path / "run.xlsx"))
    sheet = workbook["支付单"]
    first = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value == "C01")
    for row in (first, first + 1, first + 2):  # two institutions and the totals
        for col in range(3, 12):
            cell = sheet.cell(row, col)
            assert cell.data_type == "n"
            assert cell.number_format == "#,##0.00"
    assert sheet.cell(first + 1, 2).data_type == "s"  # the name that looks like a formula
    assert sheet.freeze_panes == f"C{first}"
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.print_title_rows == f"${first - 1}:${first - 1}"  # the table header


def test_xlsx_adjustment_lines_with_their_causes(monthly: dict, tmp_path: Path) -> None:
    rows = read_sheet(write_statement(monthly, tmp_path / "run.xlsx"), "调整明细")
    assert list(rows[0]) == [
        "机构编码",
        "机构名称",
        "调整期间",
        "原批次",
        "已支付",
        "重算金额",
        "调整额",
        "原因",
    ]
    assert len(rows) == 3  # header, the one line, totals
    line = rows[1]
    assert line[:4] == ("C01", "乾元镇卫生院", "2024-02", "2024-02#1")
    assert [fen(v) for v in line[4:7]] == [
        Decimal("15000.00"),
        Decimal("14879.65"),
        Decimal("-120.35"),
    ]
    assert line[7] == "\n".join(CAUSES)
    assert rows[2][0] == "合计"
    assert fen(rows[2][6]) == Decimal(monthly["totals"]["adjustments"])


def test_xlsx_without_adjustments_has_only_the_header(annual: dict, tmp_path: Path) -> None:
    rows = read_sheet(write_statement(annual, tmp_path / "run.xlsx"), "调整明细")
    assert len(rows) == 1


def test_xlsx_illustrative_note_only_when_flagged(
    monthly: dict, annual: dict, tmp_path: Path
) -> None:
    note = "示例数值，非官方 / illustrative figures, not official"
    official = read_sheet(write_statement(monthly, tmp_path / "m.xlsx"), "支付单")
    illustrative = read_sheet(write_statement(annual, tmp_path / "a.xlsx"), "支付单")
    assert all(note not in row for row in official)
    assert illustrative[-1][0] == note


def test_xlsx_same_run_same_bytes_whatever_the_clock(monthly: dict, tmp_path: Path) -> None:
    with freeze_time("2030-01-01 12:00:00"):
        first = write_statement(monthly, tmp_path / "a.xlsx").read_bytes()
    with freeze_time("2031-06-15 08:30:00"):
        second = write_statement(monthly, tmp_path / "b.xlsx").read_bytes()
    assert first == second
    workbook = openpyxl.load_workbook(tmp_path / "a.xlsx")
    assert str(workbook.properties.created) == "2025-04-02 09:00:00"
    assert str(workbook.properties.modified) == "2025-04-02 09:00:00"


# ---------------------------------------------------------------- CSV


def test_csv_is_the_table_with_bom_and_bilingual_headers(monthly: dict, tmp_path: Path) -> None:
    path = write_statement(monthly, tmp_path / "run.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[:3] == ["机构编码 code", "机构名称 name", "基本医疗 basic_medical"]
    assert header[-4:] == [
        "预拨基数 total",
        "本月预拨 advances",
        "以前期间调整 adjustments",
        "本次应付 payable",
    ]
    keys = [h.split(" ")[1] for h in header[2:]]
    assert len(rows) == 3
    for row, inst in zip(rows[:-1], monthly["institutions"], strict=True):
        name = inst["name"]  # one starts with "=": written so that it is not a formula
        assert row[:2] == [inst["code"], "'" + name if name.startswith("=") else name]
        assert row[2:] == [inst["components"].get(k) or inst[k] for k in keys]  # exact text
    assert rows[-1] == ["合计", "", *(monthly["totals"][k] for k in keys)]


def test_csv_annual_has_the_settlement_column(annual: dict, tmp_path: Path) -> None:
    path = write_statement(annual, tmp_path / "run.csv")
    with path.open(encoding="utf-8-sig", newline="") as f:
        header, first, *_ = list(csv.reader(f))
    assert "清算差额 settlement" in header
    assert first[header.index("清算差额 settlement")] == "-52643.10"


def test_csv_money_has_at_least_two_places_and_is_never_rounded(
    monthly: dict, tmp_path: Path
) -> None:
    monthly["institutions"][1]["adjustments"] = "0"  # a sum over no adjustment lines
    monthly["institutions"][1]["components"]["directive_tasks"] = "12.345"  # kept, not rounded
    path = write_statement(monthly, tmp_path / "run.csv")
    with path.open(encoding="utf-8-sig", newline="") as f:
        header, _, second, _ = list(csv.reader(f))
    assert second[header.index("以前期间调整 adjustments")] == "0.00"
    assert second[header.index("指令性任务 directive_tasks")] == "12.345"


def test_csv_text_is_never_a_formula_but_negative_money_stays_a_number(
    annual: dict, tmp_path: Path
) -> None:
    annual["institutions"][0]["name"] = '=HYPERLINK("http://x","点击")'
    annual["institutions"][1]["name"] = "-1+2"
    path = write_statement(annual, tmp_path / "run.csv")
    with path.open(encoding="utf-8-sig", newline="") as f:
        header, first, second, *_ = list(csv.reader(f))
    assert first[1] == '\'=HYPERLINK("http://x","点击")' and second[1] == "'-1+2"
    assert first[header.index("清算差额 settlement")] == "-52643.10"


# ---------------------------------------------------------------- JSON


def test_json_is_the_run_as_given(monthly: dict, tmp_path: Path) -> None:
    path = write_statement(monthly, tmp_path / "run.json")
    text = path.read_text(encoding="utf-8")
    assert "乾元镇卫生院" in text  # not \u-escaped
    loaded = json.loads(text)
    assert loaded == monthly
    assert list(loaded) == list(monthly)  # the given key order


# ---------------------------------------------------------------- refusals


def test_unknown_suffix_is_refused_in_both_languages(monthly: dict, tmp_path: Path) -> None:
    with pytest.raises(DomainError) as refused:
        write_statement(monthly, tmp_path / "run.pdf")
    assert "不支持的支付单格式" in refused.value.message_zh
    assert ".pdf" in refused.value.message_en
    assert ".xlsx, .csv, .json" in refused.value.message_en
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_unknown_kind_and_bad_money_are_refused(monthly: dict, tmp_path: Path, suffix: str) -> None:
    wrong_kind = copy.deepcopy(monthly) | {"kind": "quarterly"}
    with pytest.raises(InvalidValue, match="quarterly"):
        write_statement(wrong_kind, tmp_path / f"kind{suffix}")
    bad_money = copy.deepcopy(monthly)
    bad_money["institutions"][0]["components"]["basic_medical"] = 14092.5  # a float
    with pytest.raises(InvalidValue, match=r"basic_medical"):
        write_statement(bad_money, tmp_path / f"money{suffix}")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
