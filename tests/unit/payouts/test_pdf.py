"""PDF statements and payslips, read back with poppler (pdftotext, pdffonts, pdfinfo): the
text a reader sees, the fonts embedded, the pages."""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dangliang.domain.errors import InvalidValue
from dangliang.payouts.pdf import FONT_STACK, html_to_pdf, payslip_pages
from dangliang.payouts.statement_html import narrow, statement_html
from tests.unit.payouts.test_payslips import EQUIVALENTS, ESCAPED_NAME, distribution
from tests.unit.payouts.test_statements import CHAIN_HEAD, base_run, institution

POPPLER = ("pdftotext", "pdffonts", "pdfinfo", "pdfimages")
A4_LANDSCAPE = "841.89 x 595.276 pts (A4)"

# ---------------------------------------------------------------- reading a PDF back


def poppler(tool: str, data: bytes, *args: str) -> str:
    """Run a poppler tool on the PDF (skipped with a message when poppler-utils is absent)."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not found: install poppler-utils to read the PDFs back")
    done = subprocess.run(
        [tool, *args, "-", *(["-"] if tool == "pdftotext" else [])],
        input=data,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.decode("utf-8")


def poppler_file(tool: str, data: bytes, folder: Path, *args: str) -> str:
    """pdffonts, pdfinfo and pdfimages read a file, not stdin."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not found: install poppler-utils to read the PDFs back")
    path = folder / "document.pdf"
    path.write_bytes(data)
    done = subprocess.run(
        [tool, *args, str(path)], capture_output=True, check=True, timeout=60, text=True
    )
    return done.stdout


def text_of(data: bytes) -> str:
    """The PDF's text, one page after another (pages end with a form feed)."""
    return poppler("pdftotext", data, "-layout")


def flat(text: str) -> str:
    """The text without any white space (pdftotext spaces CJK text as it likes)."""
    return re.sub(r"\s+", "", text)


def pages(data: bytes, folder: Path) -> int:
    found = re.search(r"^Pages:\s+(\d+)$", poppler_file("pdfinfo", data, folder), re.M)
    assert found is not None
    return int(found[1])


def info(data: bytes, folder: Path) -> dict[str, str]:
    found = poppler_file("pdfinfo", data, folder)
    return {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in found.splitlines())
    }


def fonts(data: bytes, folder: Path) -> list[dict[str, str]]:
    """pdffonts' table: name, embedded, subset."""
    rows = poppler_file("pdffonts", data, folder).splitlines()[2:]
    return [{"name": r.split()[0], "emb": r.split()[-5], "sub": r.split()[-4]} for r in rows if r]


def assert_cjk_fonts_embedded(data: bytes, folder: Path) -> None:
    found = fonts(data, folder)
    assert found, "no font in the PDF"
    assert all(f["emb"] == "yes" and f["sub"] == "yes" for f in found), found
    assert all(re.fullmatch(r"[A-Z]{6}\+.+", f["name"]) for f in found), found  # subset tags
    assert any("Noto-Sans-CJK-SC" in f["name"] for f in found), found


# ---------------------------------------------------------------- runs


def monthly_run() -> dict[str, Any]:
    line = {
        "period": "2024-02",
        "run_id": "2024-02#1",
        "paid": "15000.00",
        "new": "14879.65",
        "amount": "-120.35",
        "causes": ["2024-02 basic_medical 1127.4000 → 1117.4000", "单价 12.50 → 12.40"],
    }
    zero = ("0.00", "0.00", "0.00")
    c01 = institution(
        "C01",
        "乾元镇卫生院",
        ("1234092.50", "3521.00", *zero),
        total="1237613.50",
        advances="14971.48",
        settlement="0.00",
        adjustments="-120.35",
        payable="14851.13",
        adjustment_lines=[line],
    )
    c02 = institution(
        "C02",
        "<b>洛舍</b>社区卫生服务中心",
        ("1000.07", "2000.00", *zero),
        total="3000.07",
        advances="2550.06",
        settlement="0.00",
        adjustments="0.00",
        payable="2550.06",
    )
    totals = {
        "basic_medical": "1235092.57",
        "basic_public_health": "5521.00",
        "directive_tasks": "0.00",
        "remote_adjustment": "0.00",
        "year_end_bonus": "0.00",
        "total": "1240613.57",
        "advances": "17521.54",
        "settlement": "0.00",
        "adjustments": "-120.35",
        "payable": "17401.19",
    }
    return base_run("monthly_advance", "2024-03", [c01, c02], totals)


def fund_run() -> dict[str, Any]:
    """A fund advance: two communities, one with a year adjusted after it was paid."""
    line = {
        "period": "2023",
        "amount": "10000.00",
        "final_now": "1210000.00",
        "paid": "1200000.00",
        "settled_by": "ins-2023#1",
        "causes": ["#77 结算记录更正 corrected K2023-0001 500.00 → 10500.00（稽核更正）"],
    }

    def community(code: str, name: str, figures: dict[str, str], **rest: Any) -> dict[str, Any]:
        return {"code": code, "name": name, "figures": figures, **rest}

    run = base_run("insurance_advance", "ins-2024-03", [], {})
    del run["institutions"]
    run.update(
        kind="insurance_advance",
        rule="deqing",
        fund={"revenue": "40000000.00"},
        counts={"insured": 40},
        communities=[
            community(
                "WK",
                "武康健保集团",
                {"budget": "1500000.00", "spending": "1234567.89", "balance": "265432.11",
                 "advance": "1500000.00"},
                adjustments="10000.00",
                adjustment_lines=[line],
                payable="1510000.00",
            ),
            community(
                "XS",
                "新市健保集团",
                {"budget": "800000.00", "spending": "900000.00", "balance": "-100000.00",
                 "advance": "800000.00"},
                adjustments="0.00",
                adjustment_lines=[],
                payable="800000.00",
            ),
        ],
        totals={"budget": "2300000.00", "spending": "2134567.89", "advance": "2300000.00",
                "adjustments": "10000.00", "payable": "2310000.00"},
    )  # fmt: skip
    return run


def distribution_doc() -> dict[str, Any]:
    return {
        "run_id": "perf-2024#1",
        "state": "approved",
        "position": 123456,
        "chain_head": "ab" * 32,
        "period": "2024",
        "institution": {"code": "C01", "name": "乾元镇卫生院"},
        "policy": {"bundle": "zhuji.yaml", "parameters_digest": "d1g35t"},
        "distribution": distribution().as_json(),
        "equivalents": EQUIVALENTS,
    }


# ---------------------------------------------------------------- html_to_pdf


def test_the_chinese_font_is_embedded_as_a_subset_and_the_title_set(tmp_path: Path) -> None:
    page = "<!DOCTYPE html><html><head><title>工资条 2024</title></head><body>工资条</body></html>"
    data = html_to_pdf(page)
    assert data.startswith(b"%PDF-")
    assert_cjk_fonts_embedded(data, tmp_path)
    assert info(data, tmp_path)["Title"] == "工资条 2024"
    assert info(html_to_pdf(page, title="支付单"), tmp_path)["Title"] == "支付单"
    assert info(html_to_pdf("<p>无标题</p>"), tmp_path)["Title"] == "dangliang"
    assert "工资条" in text_of(data)
    assert '"Noto Sans CJK SC"' in FONT_STACK


def test_nothing_is_fetched_but_data_urls(tmp_path: Path) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    (tmp_path / "seal.png").write_bytes(png)
    local = f'<img src="{(tmp_path / "seal.png").as_uri()}">'
    inline = f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}">'
    images = poppler_file("pdfimages", html_to_pdf(f"<p>{local}{inline}</p>"), tmp_path, "-list")
    kinds = [line.split()[2] for line in images.splitlines()[2:]]
    assert kinds.count("image") == 1  # the data: image only, the file was not read


def test_the_same_document_prints_the_same(tmp_path: Path) -> None:
    html = statement_html(monthly_run())
    first, second = html_to_pdf(html), html_to_pdf(html)
    assert text_of(first) == text_of(second)
    assert info(first, tmp_path) == info(second, tmp_path)


# ---------------------------------------------------------------- statements


def test_a_statement_shows_the_header_every_institution_and_the_exact_totals(
    tmp_path: Path,
) -> None:
    data = html_to_pdf(statement_html(monthly_run()))
    text = flat(text_of(data))
    for expected in (
        "基层医疗卫生机构补偿按月预拨支付单2024-03",
        "诸暨市/Zhuji",  # the built-in bundle's county
        "批次编号runid2024-03#1",
        "已审核approved",
        "alice/2025-04-02T09:00:00+00:00",
        "bob/2025-04-03T10:00:00+00:00",
        "1234567/2025-04-02T08:59:58+00:00",
        CHAIN_HEAD,
        "ab12" + "1" * 60,
        "乾元镇卫生院",
        "<b>洛舍</b>社区卫生服务中心",  # escaped in the HTML, printed as written
        "1,234,092.50",
        "-120.35",
        "合计1,235,092.575,521.000.000.000.001,240,613.5717,521.54-120.3517,401.19",
        "调整明细",
        "单价12.50→12.40",
        "第1页/共1页",
    ):
        assert expected in text, expected
    assert info(data, tmp_path)["Page size"] == A4_LANDSCAPE
    assert info(data, tmp_path)["Title"] == "基层医疗卫生机构补偿 按月预拨支付单 2024-03"
    assert_cjk_fonts_embedded(data, tmp_path)


def test_the_html_escapes_every_value_and_runs_nothing() -> None:
    html = statement_html(monthly_run())
    assert "&lt;b&gt;洛舍&lt;/b&gt;" in html and "<b>洛舍" not in html
    assert "<script" not in html and "http" not in html
    assert "size:A4 landscape;margin:12mm" in html


def test_a_settlement_with_negative_amounts_and_the_illustrative_note() -> None:
    run = monthly_run()
    run.update(kind="annual_settlement", period="2024", state="paid", illustrative=True)
    run["paid_reference"] = "BANK-2025-0042"
    run["institutions"][0].update(settlement="-52643.10", payable="-52643.10")
    run["totals"].update(settlement="-50093.04", payable="-50093.04")
    text = flat(text_of(html_to_pdf(statement_html(run))))
    assert "年终清算支付单2024" in text and "清算差额" in text
    assert "-52,643.10" in text and "-50,093.04" in text
    assert "示例数值，非官方" in text and "BANK-2025-0042" in text


def test_a_statement_narrowed_for_a_clerk_has_no_other_lines_and_no_totals() -> None:
    run = monthly_run()
    narrowed = narrow(run, {"C01", "C99"})
    assert narrowed["scope"] == ["C01"] and "totals" not in narrowed
    assert run["totals"] and len(run["institutions"]) == 2  # the run itself is untouched
    text = flat(text_of(html_to_pdf(statement_html(narrowed))))
    assert "乾元镇卫生院" in text and "14,851.13" in text
    assert "洛舍" not in text and "17,401.19" not in text and "1,240,613.57" not in text
    assert "合计" not in text
    assert "本单仅列出C01的数据" in text


def test_a_long_statement_repeats_the_table_header_and_numbers_its_pages(
    tmp_path: Path,
) -> None:
    run = monthly_run()
    template = run["institutions"][1]
    run["institutions"] = [
        {**copy.deepcopy(template), "code": f"C{n:03d}", "name": f"第{n}卫生院"} for n in range(60)
    ]
    data = html_to_pdf(statement_html(run))
    count = pages(data, tmp_path)
    text = text_of(data)
    assert count > 1
    assert flat(text).count("机构编码机构名称") == count  # the header row on every page
    for n in range(1, count + 1):
        assert f"第{n}页/共{count}页" in flat(text)
    assert all(f"第{n}卫生院" in text for n in range(60))


def test_a_fund_statement_lists_its_communities_and_the_adjusted_year(tmp_path: Path) -> None:
    data = html_to_pdf(statement_html(fund_run()))
    text = flat(text_of(data))
    for expected in (
        "医保基金预拨拨付单ins-2024-03",
        "医共体编码医共体名称本期预算本期基金支出本期结余本期预拨以前年度调整本次应付",
        "武康健保集团",
        "新市健保集团",
        "-100,000.00",
        "合计2,300,000.002,134,567.892,300,000.0010,000.002,310,000.00",  # no balance total
        "ins-2023#1",
        "稽核更正",
    ):
        assert expected in text, expected
    assert_cjk_fonts_embedded(data, tmp_path)
    clerks = narrow(fund_run(), {"XS"})
    assert not {"totals", "fund", "counts"} & set(clerks)
    narrowed = flat(text_of(html_to_pdf(statement_html(clerks))))
    assert "新市健保集团" in narrowed and "武康" not in narrowed and "合计" not in narrowed


def test_an_unknown_kind_is_refused() -> None:
    run = monthly_run()
    run["kind"] = "weekly"
    with pytest.raises(InvalidValue):
        statement_html(run)


# ---------------------------------------------------------------- payslips


def test_an_institutions_payslips_are_a_page_per_person(tmp_path: Path) -> None:
    doc = distribution_doc()
    people = doc["distribution"]["staff"]
    data = html_to_pdf(payslip_pages(doc, [p["staff_id"] for p in people]))
    assert pages(data, tmp_path) == len(people) == 4
    by_page = text_of(data).split("\f")
    for page, person in zip(by_page, people, strict=False):
        assert person["name"] in page and f"{Decimal(person['total']):,.2f}" in flat(page)
    assert ESCAPED_NAME in text_of(data)
    assert info(data, tmp_path)["Title"] == "乾元镇卫生院 2024 绩效工资明细（工资条）"
    assert_cjk_fonts_embedded(data, tmp_path)


def test_one_persons_payslip(tmp_path: Path) -> None:
    doc = distribution_doc()
    person = next(p for p in doc["distribution"]["staff"] if p["staff_id"] == "S002")
    data = html_to_pdf(payslip_pages(doc, ["S002"]))
    assert pages(data, tmp_path) == 1
    text = flat(text_of(data))
    assert "张医生" in text and f"合计{Decimal(person['total']):,.2f}" in text
    assert "S003" not in text
    assert info(data, tmp_path)["Title"] == "乾元镇卫生院 2024 绩效工资明细（工资条） 张医生"
