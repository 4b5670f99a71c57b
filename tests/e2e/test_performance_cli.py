"""Performance pay through the console script, on the demo county: distribute, explain a
person, the year's distribution run the demo recorded (maker-checker, paid, closed), its
payslips read back, replay."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.e2e.conftest import Demo, on_sqlite
from tests.e2e.test_equivalents_cli import run


@pytest.mark.slow
@on_sqlite  # what the demo printed and wrote (the same commands: test_payout_cli)
def test_distribution_from_the_demo_county(demo: Demo, tmp_path: Path) -> None:
    db_url = demo.db_url
    assert demo.first.returncode == 0, demo.first.stderr
    assert "绩效工资分配 / performance pay: 139 institutions" in demo.first.stdout

    shares = run("distribute", "--year", "2024", "--institution", "C01", "--json", db=db_url)
    assert shares.returncode == 0, shares.stderr
    c01 = json.loads(shares.stdout)["institutions"][0]
    totals = c01["totals"]
    assert Decimal(totals["base"]) + Decimal(totals["reward"]) - Decimal(
        totals["floor_contribution"]
    ) + Decimal(totals["floor_top_up"]) - Decimal(totals["floor_top_up_outside"]) == Decimal(
        totals["pool"]
    )
    person = next(p for p in c01["staff"] if not p["director"] and p["performance_pay"] != "0.00")

    explained = run("explain", "--staff", person["staff_id"], "--year", "2024", db=db_url)
    assert explained.returncode == 0, explained.stderr
    assert "reward_part" in explained.stdout and "当量明细" in explained.stdout

    # The demo recorded the year's run; a second person approved it (maker-checker), it was
    # paid, and the year is closed.
    run_id = "perf-2024#1"
    shown = json.loads(run("payout", "show", run_id, "--json", db=db_url).stdout)
    assert shown["state"] == "paid" and shown["approved_by"] == "e2e-checker"
    assert shown["computed_by"] == "e2e"
    closed = run("distribution", "run", "--year", "2024", db=db_url)
    assert closed.returncode == 1 and run_id in closed.stderr
    again = run("payout", "approve", run_id, "--reference", "审批", "--actor", "x", db=db_url)
    assert again.returncode == 1 and "is paid" in again.stderr

    out = tmp_path / "slips"
    slips = run("distribution", "payslips", run_id, "--out", str(out), db=db_url)
    assert slips.returncode == 0, slips.stderr
    html = (out / "C01" / f"{person['staff_id']}.html").read_text(encoding="utf-8")
    assert person["name"] in html and run_id in html
    sheet = load_workbook(out / "C01.xlsx").worksheets[0]
    assert person["staff_id"] in {row[0] for row in sheet.iter_rows(values_only=True)}

    replay = run("audit", "replay", run_id, db=db_url)
    assert replay.returncode == 0 and "identical" in replay.stdout
