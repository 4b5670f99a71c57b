"""Payslips (HTML) and the institution's distribution sheet (XLSX) from a real distribution."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from dangliang.domain.errors import InvalidValue
from dangliang.payouts.payslips import (
    MONEY_FORMAT,
    SHEET,
    equivalent_total_text,
    money_text,
    payslip_html,
    write_distribution_sheet,
    write_payslips,
)
from dangliang.policy.distribution import distribute
from dangliang.policy.distribution_allocation import EPIDEMIC_ALLOWANCE, FAMILY_DOCTOR_FEES
from dangliang.policy.distribution_records import Distribution, InstitutionPool, StaffInputs

D = Decimal
ESCAPED_NAME = "李<b>&护"
FORMULA_NAME = "=SUM(A1)院长"
SCRIPT_ITEM = "<script>alert(1)</script>"


def person(staff_id: str, **overrides: Any) -> StaffInputs:
    fields: dict[str, Any] = {
        "staff_id": staff_id,
        "name": f"职工{staff_id}",
        "post": "clinical",
        "establishment": True,
        "equivalents": D("1000"),
        "personal_coefficient": D("1"),
        "months_in_post": 12,
        "base_pay": D("10000"),
    }
    fields.update(overrides)
    return StaffInputs(**fields)


def distribution() -> Distribution:
    institution = InstitutionPool(
        code="C01",
        pool=D("200000.00"),
        reward_share=D("0.60"),
        post_coefficients={"clinical": D("1.6"), "nursing": D("1.0"), "village_doctor": D("1.1")},
        outside_total={
            "S002": {FAMILY_DOCTOR_FEES: D("3600.00")},
            "S003": {EPIDEMIC_ALLOWANCE: D("1234.56")},
        },
        surplus=D("50000.00"),
        surplus_share=D("0.50"),
        year_end_bonus_per_head=D("60000.00"),
        year_end_bonus_finance_per_head=D("10000.00"),
        director_id="S001",
    )
    staff = [
        person("S001", name=FORMULA_NAME),
        person("S002", name="张医生", equivalents=D("2000")),
        person(
            "S003",
            name=ESCAPED_NAME,
            post="nursing",
            equivalents=D("1500"),
            base_pay=D("8000"),
            months_in_post=9,
        ),
        person(
            "S004",
            name="王村医",
            post="village_doctor",
            establishment=False,
            equivalents=D("100"),
            base_pay=D("5000"),
            floor=D("32000.00"),
        ),
    ]
    return distribute(institution, staff, period="2024")


EQUIVALENTS = {
    "S002": [
        {
            "item": "BM002",
            "name": SCRIPT_ITEM,
            "month": "2024-03",
            "quantity": "2.0000",
            "equivalent_value": "3.5000",
            "equivalents": "7.0000",
        },
        {
            "item": "BM001",
            "name": "普通门诊诊疗",
            "month": "2024-03",
            "quantity": "18.0000",
            "equivalent_value": "1.0000",
            "equivalents": "18.0000",
        },
        {
            "item": "BM001",
            "name": "普通门诊诊疗",
            "month": "2024-01",
            "quantity": "1200.0000",
            "equivalent_value": "1.0000",
            "equivalents": "1200.0000",
        },
    ],
    "S004": [
        {
            "item": "GW010",
            "name": "慢病随访",
            "month": "2024-06",
            "quantity": "40.0000",
            "equivalent_value": "2.5000",
            "equivalents": "100.0000",
        }
    ],
}


@pytest.fixture
def dist() -> Distribution:
    return distribution()


@pytest.fixture
def doc(dist: Distribution) -> dict[str, Any]:
    return {
        "run_id": "perf-2024#1",
        "state": "approved",
        "position": 123456,
        "chain_head": "ab" * 32,
        "period": "2024",
        "institution": {"code": "C01", "name": "乾元镇卫生院"},
        "policy": {"bundle": "zhuji.yaml", "parameters_digest": "d1g35t"},
        "illustrative": True,
        "distribution": dist.as_json(),
        "equivalents": EQUIVALENTS,
    }


def test_the_distribution_has_the_cases_the_payslips_show(dist: Distribution) -> None:
    assert dist.staff["S001"].director
    assert dist.staff["S002"].outside
    assert dist.staff["S004"].floor_top_up > 0
    assert dist.staff["S002"].floor_contribution > 0


def test_each_payslip_shows_the_person_and_every_amount(
    doc: dict[str, Any], dist: Distribution
) -> None:
    for staff_id, share in dist.staff.items():
        page = payslip_html(doc, staff_id)
        assert page.startswith("<!DOCTYPE html>")
        assert '<meta charset="utf-8">' in page
        assert "<script" not in page.lower()
        assert "@media print" in page
        assert "乾元镇卫生院" in page
        assert "perf-2024#1" in page and "已审核" in page and "123456" in page
        assert "示例数值，非官方" in page
        assert f"<td>{staff_id}</td>" in page
        if share.name not in (ESCAPED_NAME, FORMULA_NAME):
            assert share.name in page
        for amount in (
            share.base,
            share.reward,
            share.surplus,
            share.floor_top_up,
            share.performance_pay,
            share.year_end_bonus,
            share.year_end_bonus_finance,
            share.total,
            *share.outside.values(),
        ):
            assert f">{money_text(amount)}</td>" in page, (staff_id, amount)
        if share.floor_contribution:
            assert f">-{money_text(share.floor_contribution)}</td>" in page
    assert "院长（主任）年薪" in payslip_html(doc, "S001")
    assert "院长（主任）年薪" not in payslip_html(doc, "S002")


def test_payslip_labels_posts_outside_items_and_floor(doc: dict[str, Any]) -> None:
    s002 = payslip_html(doc, "S002")
    assert "<td>临床</td>" in s002 and "<td>在编</td>" in s002
    assert "家庭医生签约服务费" in s002
    assert ">3,600.00</td>" in s002
    s003 = payslip_html(doc, "S003")
    assert "公卫医生防疫补贴" in s003 and ">1,234.56</td>" in s003
    assert ">0.7500</td>" in s003  # 9 of 12 months
    s004 = payslip_html(doc, "S004")
    assert "<td>乡村医生</td>" in s004 and "<td>编外</td>" in s004
    assert "保底额" in s004 and ">32,000.00</td>" in s004


def test_payslip_equivalents_rows_and_total(doc: dict[str, Any]) -> None:
    page = payslip_html(doc, "S002")
    for line in EQUIVALENTS["S002"]:
        assert f"<td>{line['month']}</td>" in page
        assert f">{line['quantity']}</td>" in page
        assert f">{line['equivalents']}</td>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    total = sum((D(line["equivalents"]) for line in EQUIVALENTS["S002"]), D(0))
    assert equivalent_total_text(total) == "1225.0000"
    assert "当量合计" in page and ">1225.0000</td>" in page
    # by item, then month
    assert page.index("2024-01") < page.index("2024-03") < page.index("BM002")
    # nobody without equivalents gets rows, only the zero total
    assert ">0.0000</td>" in payslip_html(doc, "S003")


def test_payslip_escapes_every_value(doc: dict[str, Any]) -> None:
    page = payslip_html(doc, "S003")
    assert ESCAPED_NAME not in page
    assert "李&lt;b&gt;&amp;护" in page
    assert "<b>" not in page


def test_payslip_is_deterministic_and_refuses_an_unknown_person(doc: dict[str, Any]) -> None:
    assert payslip_html(doc, "S002") == payslip_html(doc, "S002")
    with pytest.raises(InvalidValue, match="no staff S999"):
        payslip_html(doc, "S999")


def test_payslip_without_run_or_illustrative(doc: dict[str, Any]) -> None:
    bare = {**doc, "run_id": None, "state": None, "chain_head": None, "illustrative": False}
    page = payslip_html(bare, "S002")
    assert "批次编号" not in page and "状态" not in page
    assert "示例数值" not in page
    assert "日志位置" in page


def test_write_payslips_writes_one_file_per_person(doc: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "slips"
    paths = write_payslips(doc, folder)
    assert [p.name for p in paths] == ["S001.html", "S002.html", "S003.html", "S004.html"]
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in paths]
    for path in paths:
        assert path.read_text(encoding="utf-8") == payslip_html(doc, path.stem)


def test_write_payslips_refuses_an_id_that_is_not_a_file_name(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    doc["distribution"]["staff"][0]["staff_id"] = "../evil"
    with pytest.raises(InvalidValue, match="not a file name"):
        write_payslips(doc, tmp_path)


def _money_cell(value: Any) -> Decimal:
    assert isinstance(value, int | float), value
    return D(repr(value))


def test_distribution_sheet_reads_back(
    doc: dict[str, Any], dist: Distribution, tmp_path: Path
) -> None:
    path = write_distribution_sheet(doc, tmp_path / "C01.xlsx")
    sheet = load_workbook(path)[SHEET]
    assert sheet["A1"].value == "乾元镇卫生院 2024 绩效工资分配表"
    header = {sheet.cell(r, 1).value: sheet.cell(r, 3).value for r in range(2, 13)}
    assert header["批次编号 run id"] == "perf-2024#1"
    assert header["状态 state"] == "已审核 approved"
    assert header["日志位置 log position"] == 123456
    assert header["哈希链头 chain head"] == "ab" * 32
    assert _money_cell(header["绩效工资总量 pool"]) == dist.pool
    assert _money_cell(header["奖励性绩效总额 reward pool"]) == dist.reward_pool
    assert _money_cell(header["结余再分配额 surplus redistributed"]) == dist.surplus_redistributed

    head = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value == "工号")
    names = [sheet.cell(head, c).value for c in range(1, sheet.max_column + 1)]
    assert names == [
        "工号",
        "姓名",
        "岗位",
        "在编",
        "在岗月数占比",
        "分配权重",
        "基础性绩效",
        "奖励性绩效",
        "结余再分配",
        "保底补足",
        "保底调剂",
        "绩效工资合计",
        "家庭医生签约服务费",
        "公卫医生防疫补贴",
        "年终考核奖",
        "其中财政",
        "合计",
    ]
    col = {name: n for n, name in enumerate(names, start=1)}

    def expected(s: Any) -> dict[str, Decimal]:
        return {
            "基础性绩效": s.base,
            "奖励性绩效": s.reward,
            "结余再分配": s.surplus,
            "保底补足": s.floor_top_up,
            "保底调剂": s.floor_contribution,
            "绩效工资合计": s.performance_pay,
            "家庭医生签约服务费": s.outside.get(FAMILY_DOCTOR_FEES, D(0)),
            "公卫医生防疫补贴": s.outside.get(EPIDEMIC_ALLOWANCE, D(0)),
            "年终考核奖": s.year_end_bonus,
            "其中财政": s.year_end_bonus_finance,
            "合计": s.total,
        }

    for row, share in enumerate(dist.staff.values(), start=head + 1):
        assert sheet.cell(row, 1).value == share.staff_id
        assert sheet.cell(row, 2).value == share.name
        assert sheet.cell(row, 2).data_type == "s"  # "=SUM(A1)院长" stays text
        for name, amount in expected(share).items():
            cell = sheet.cell(row, col[name])
            assert cell.data_type == "n" and cell.number_format == MONEY_FORMAT
            assert _money_cell(cell.value) == amount, (share.staff_id, name)
        assert D(repr(sheet.cell(row, col["在岗月数占比"]).value)) == share.months_share
    assert sheet.cell(head + 3, col["岗位"]).value == "护理"
    assert sheet.cell(head + 4, col["在编"]).value == "编外"

    totals_row = head + 1 + len(dist.staff)
    assert sheet.cell(totals_row, 1).value == "合计"
    totals = dist.totals()
    expected_totals = {
        "基础性绩效": totals["base"],
        "奖励性绩效": totals["reward"],
        "结余再分配": totals["surplus"],
        "保底补足": totals["floor_top_up"],
        "保底调剂": totals["floor_contribution"],
        "绩效工资合计": totals["performance_pay"],
        "家庭医生签约服务费": totals["outside"][FAMILY_DOCTOR_FEES],
        "公卫医生防疫补贴": totals["outside"][EPIDEMIC_ALLOWANCE],
        "年终考核奖": totals["year_end_bonus"],
        "其中财政": totals["year_end_bonus_finance"],
        "合计": totals["total"],
    }
    for name, amount in expected_totals.items():
        assert _money_cell(sheet.cell(totals_row, col[name]).value) == amount, name
    assert sheet.cell(totals_row + 2, 1).value.startswith("示例数值，非官方")


def test_distribution_sheet_bytes_are_deterministic(doc: dict[str, Any], tmp_path: Path) -> None:
    first = write_distribution_sheet(doc, tmp_path / "a.xlsx").read_bytes()
    second = write_distribution_sheet(doc, tmp_path / "b.xlsx").read_bytes()
    assert first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xlsx", "b.xlsx"]  # no temp files
