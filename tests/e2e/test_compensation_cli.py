"""`dangliang policy`, `compute`, `explain` and `records` through the real console script."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dangliang.application import bootstrap
from dangliang.settings import Settings
from tests.e2e.conftest import Demo, on_sqlite
from tests.e2e.test_equivalents_cli import run


@pytest.mark.slow
def test_policy_compute_explain_what_if_and_records(records_url: str, tmp_path: Path) -> None:
    db_url = records_url

    refused = run("compute", "--year", "2024", db=db_url)
    assert refused.returncode == 1
    assert "policy load" in refused.stderr

    adopted = run("policy", "load", "zhuji", "--reference", "县卫健〔2024〕1号", db=db_url)
    assert adopted.returncode == 0, adopted.stderr
    assert "adopted" in adopted.stdout
    again = run("policy", "load", "zhuji", "--reference", "县卫健〔2024〕1号", db=db_url)
    assert "already in force" in again.stdout

    year = run("compute", "--year", "2024", "--json", db=db_url)
    assert year.returncode == 0, year.stderr
    settled = json.loads(year.stdout)
    assert settled["kind"] == "annual_settlement"
    assert settled["policy"]["bundle"] == "zhuji.yaml"
    c01 = next(r for r in settled["institutions"] if r["code"] == "C01")
    assert Decimal(c01["total"]) == sum(Decimal(v) for v in c01["components"].values())

    month = run("compute", "--month", "2024-03", "--json", db=db_url)
    assert month.returncode == 0, month.stderr
    assert json.loads(month.stdout)["kind"] == "monthly_advance"

    table = run("compute", "--year", "2024", db=db_url)
    assert table.returncode == 0 and "C01" in table.stdout and "乾元镇卫生院" in table.stdout

    explained = run(
        "explain",
        "--institution",
        "C01",
        "--year",
        "2024",
        "--component",
        "basic_medical",
        db=db_url,
    )
    assert explained.returncode == 0, explained.stderr
    text = explained.stdout
    assert f"= {Decimal(c01['components']['basic_medical']):,.2f} 元" in text
    assert "basic_medical_growth_cap = 0.1 ratio (from 2022-01-01; 诸暨方案 二(四)3" in text
    assert "当量明细" in text and "dangliang records --institution C01" in text

    as_json = run("explain", "--institution", "C01", "--year", "2024", "--json", db=db_url)
    assert json.loads(as_json.stdout)["amount"] == c01["total"]

    listed = run("records", "--institution", "C01", "--period", "2024-03", "--json", db=db_url)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["records"]
    assert rows and all(r["month"] == "2024-03" for r in rows)

    what_if = run(
        "compute", "--year", "2024", "--set", "unit_price.basic_medical=13.00", "--json", db=db_url
    )
    assert what_if.returncode == 0, what_if.stderr
    diff = json.loads(what_if.stdout)
    assert diff["written"] is False
    scenario = tmp_path / "price.yaml"
    scenario.write_text(
        "description: 单价 13 元\nchanges:\n"
        '  - {path: unit_price.basic_medical, value: "13.00", from: 2024-01-01}\n',
        encoding="utf-8",
    )
    from_file = run("compute", "--year", "2024", "--scenario", str(scenario), "--json", db=db_url)
    assert json.loads(from_file.stdout)["institutions"] == diff["institutions"]
    float_scenario = tmp_path / "float.yaml"
    float_scenario.write_text(
        "changes:\n  - {path: unit_price.basic_medical, value: 13.0, from: 2024-01-01}\n",
        encoding="utf-8",
    )
    bad = run("compute", "--year", "2024", "--scenario", str(float_scenario), db=db_url)
    assert bad.returncode == 1 and "float.yaml" in bad.stderr and "in quotes" in bad.stderr

    changed = run(
        "policy",
        "set",
        "unit_price.basic_medical",
        "13.00",
        "--from",
        "2024-01-01",
        "--reason",
        "价格调整",
        "--approver",
        "县财政局",
        db=db_url,
    )
    assert changed.returncode == 0, changed.stderr
    after = json.loads(run("compute", "--year", "2024", "--json", db=db_url).stdout)
    assert after["totals"]["total"] == diff["totals"]["scenario"]
    past = json.loads(
        run(
            "compute", "--year", "2024", "--position", str(settled["position"]), "--json", db=db_url
        ).stdout
    )
    assert past["totals"] == settled["totals"]

    missing = run(
        "policy", "set", "unit_price.basic_medical", "14", "--from", "2025-01-01", db=db_url
    )
    assert missing.returncode == 2 and "--reason" in missing.stderr

    shown = run("policy", "show", "--on", "2024-06-01", db=db_url)
    assert (
        "unit_price.basic_medical" in shown.stdout and "价格调整（批准：县财政局）" in shown.stdout
    )


def test_a_bad_policy_file_is_refused_with_file_line_and_key(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "county.yaml"
    bad.write_text(
        "pricing:\n"
        "  mode:\n"
        "    description: x\n"
        "    unit: text\n"
        "    values:\n"
        "      2024-01-01: {value: fixed, reference: r}\n"
        "unit_price:\n"
        "  basic_medical:\n"
        "    description: x\n"
        "    unit: CNY/EU\n"
        "    monthly: true\n"
        "    values:\n"
        "      2024-01-15: {value: 12.5, reference: r}\n",
        encoding="utf-8",
    )
    out = run("policy", "load", str(bad), "--reference", "x", db=db_url)
    assert out.returncode == 1
    assert "county.yaml:13:unit_price.basic_medical.values.2024-01-15" in out.stderr
    assert "1st of a month" in out.stderr and "in quotes" in out.stderr
    assert "nothing was written" in out.stderr


@pytest.mark.slow
@on_sqlite  # what the demo printed and wrote (the same commands: test_payout_cli)
def test_demo_pays_the_year_writes_statements_and_payslips_and_runs_again(demo: Demo) -> None:
    db_url, out_dir, out = demo.db_url, demo.out_dir, demo.first
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for kind in ("assessment_scores.csv", "medical_income.csv", "pay_levels.csv"):
        assert kind in text
    assert "zhuji.yaml adopted" in text and "year-end settlement" in text
    assert "approved by e2e-checker" in text and "共 / total" in text

    # 12 monthly advances, the settlement and the staff distribution: approved by a second
    # person, paid; and the insurance fund's 12 advances and settlement (tests/e2e/test_cli.py).
    listed = run("payout", "list", "--json", db=db_url)
    assert listed.returncode == 0, listed.stderr
    runs = {r["run_id"]: r for r in json.loads(listed.stdout)}
    months = [f"2024-{m:02d}#1" for m in range(1, 13)]
    fund = {f"ins-2024-{m:02d}#1" for m in range(1, 13)} | {"ins-2024#1"}
    assert set(runs) == {*months, "2024#1", "perf-2024#1", *fund}
    assert all(r["state"] == "paid" and r["approved_by"] == "e2e-checker" for r in runs.values())
    assert all(r["computed_by"] == "e2e" for r in runs.values())
    app = bootstrap(Settings(db_url))
    try:
        settled = app.payout_run("2024#1").results
        distributed = app.payout_run("perf-2024#1").results
    finally:
        app.close()
    rows = {r["code"]: r for r in settled["institutions"]}
    assert Decimal(rows["C12"]["components"]["remote_adjustment"]) > 0  # generated pay level
    assert any(Decimal(r["components"]["directive_tasks"]) > 0 for r in rows.values())
    assert all(r["score"] is not None for r in rows.values())  # every score was loaded

    # The summary's county line is the recorded settlement, to the fen, and so is the
    # statement's totals row; the settlement takes the advances actually paid.
    county = next(line for line in text.splitlines() if line.strip().startswith("全县 "))
    total, advances, settlement = [Decimal(x.replace(",", "")) for x in county.split()[-3:]]
    assert Decimal(settled["totals"]["total"]) == total
    assert Decimal(settled["totals"]["settlement"]) == settlement == total - advances
    paid = sum(Decimal(runs[m]["totals"]["payable"]) for m in months)
    assert Decimal(settled["totals"]["advances"]) == advances == paid
    statements = out_dir / "statements"
    assert sorted(p.name for p in statements.iterdir()) == sorted(
        [f"2024-{m:02d}.xlsx" for m in range(1, 13)] + ["2024.xlsx"]
    )
    table = list(load_workbook(statements / "2024.xlsx").worksheets[0].iter_rows(values_only=True))
    header = next(r for r in table if r[0] == "机构编码")
    totals_row = next(r for r in table if r[0] == "合计")
    assert Decimal(str(totals_row[header.index("合计")])) == total
    assert Decimal(str(totals_row[header.index("已预拨")])) == advances

    # A payslip per person of the distribution run, and a sheet per institution.
    institutions = distributed["institutions"]
    people = {(i["code"], p["staff_id"]) for i in institutions for p in i["staff"]}
    payslips = out_dir / "payslips"
    assert {(p.parent.name, p.stem) for p in payslips.glob("*/*.html")} == people
    assert len(list(payslips.glob("*.xlsx"))) == len(institutions) == 139
    assert f"{len(people)} HTML" in text

    # Again on the same database: every period is reported as paid (14 runs and the fund's
    # 13) and nothing is recorded.
    again = run("demo", "--records", "3000", "--out", str(out_dir), db=db_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already paid, skipped") == 14 + 13
    assert "0 new, 3000 already present" in again.stdout and "already in force" in again.stdout
    assert "deqing_insurance.yaml already in force" in again.stdout
    assert again.stdout.count(" 0 new, ") == 1 + 5  # the services and the fund's five files
    assert county in again.stdout.splitlines()
    summary = text[text.index("\n14. ") : text.index("\n15. ")]
    assert summary[: summary.rindex(" (")] in again.stdout  # the fund's year, as before
    relisted = json.loads(run("payout", "list", "--json", db=db_url).stdout)
    assert {r["run_id"]: r["state"] for r in relisted} == {k: "paid" for k in runs}


def test_demo_refuses_a_year_that_has_not_ended(db_url: str, tmp_path: Path) -> None:
    year = str(date.today().year)
    folder = tmp_path / "demo"
    out = run("demo", "--records", "10", "--year", year, "--out", str(folder), db=db_url)
    assert out.returncode == 2 and "has not ended" in out.stderr
    assert not folder.exists()  # nothing generated
