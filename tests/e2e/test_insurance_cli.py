"""`dangliang insurance …` through the command line, on both backends: the fund's files
imported (a bad file refused with every problem, a re-import changing nothing), both
built-in rules adopted, figures, explain, what-if, a fund run approved by a second person,
its statement, replay and the log verified."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from openpyxl import load_workbook

from tests.api.conftest import FUND_FILES
from tests.e2e.test_equivalents_cli import run

ORDER = ("communities", "fund_years", "community_scores", "enrolment_counts", "claims")


def fund_files(folder: Path) -> dict[str, Path]:
    paths = {}
    for kind in ORDER:
        paths[kind] = folder / f"{kind}.csv"
        paths[kind].write_text(FUND_FILES[kind], encoding="utf-8")
    return paths


def test_the_fund_from_the_command_line(reference_url: str, tmp_path: Path) -> None:
    db_url = reference_url
    files = fund_files(tmp_path)
    bad = tmp_path / "bad_scores.csv"
    bad.write_text("community_code,year,score,reference\nYGT01,2024,120,x\nNOPE,2024,50,y\n")
    refused = run("insurance", "import", "community_scores", str(bad), db=db_url)
    assert refused.returncode == 1
    assert "bad_scores.csv:2" in refused.stderr and "bad_scores.csv:3" in refused.stderr
    assert "nothing was written" in refused.stderr
    for kind in ORDER:
        done = run("insurance", "import", kind, str(files[kind]), db=db_url)
        assert done.returncode == 0, done.stderr
    again = run("insurance", "import", "claims", str(files["claims"]), db=db_url)
    assert "600 rows, 0 new, 600 already present" in again.stdout

    compensation = run("insurance", "policy", "load", "zhuji", "--reference", "x", db=db_url)
    assert compensation.returncode == 1 and "policy load" in compensation.stderr
    loaded = run(
        "insurance",
        "policy",
        "load",
        "deqing_insurance",
        "--reference",
        "纪要〔2022〕1号",
        db=db_url,
    )
    assert loaded.returncode == 0, loaded.stderr
    computed = run("insurance", "compute", "--year", "2024", "--json", db=db_url)
    assert computed.returncode == 0, computed.stderr
    doc = json.loads(computed.stdout)
    assert [c["code"] for c in doc["communities"]] == ["YGT01", "YGT02"]
    text = run("insurance", "compute", "--year", "2024", db=db_url).stdout
    assert "YGT01" in text and doc["communities"][0]["figures"]["final"] in text

    explained = run("insurance", "explain", "--community", "YGT02", "--year", "2024", db=db_url)
    assert explained.returncode == 0, explained.stderr
    assert "deqing.overspend.base_share" in explained.stdout or "70%" in explained.stdout
    assert "dangliang insurance records --community YGT02" in explained.stdout

    what_if = run(
        "insurance",
        "what-if",
        "--year",
        "2024",
        "--set",
        "deqing.growth_rate=0.2",
        "--json",
        db=db_url,
    )
    assert what_if.returncode == 0, what_if.stderr
    budget = json.loads(what_if.stdout)["fund"]["budget_total"]
    assert Decimal(budget["scenario"]) == Decimal("720000.00") > Decimal(budget["baseline"])

    made = run("insurance", "run", "--month", "2024-01", db=db_url)
    assert made.returncode == 0, made.stderr
    assert "ins-2024-01#1" in made.stdout
    quarter = run("insurance", "run", "--quarter", "2024-Q2", db=db_url)
    assert quarter.returncode == 1 and "monthly" in quarter.stderr
    own = run("insurance", "approve", "ins-2024-01#1", "--reference", "审批", db=db_url)
    assert own.returncode == 1 and "maker-checker" in own.stderr
    approved = run(
        "insurance",
        "approve",
        "ins-2024-01#1",
        "--reference",
        "审批",
        "--actor",
        "checker",
        db=db_url,
    )
    assert approved.returncode == 0, approved.stderr
    out = tmp_path / "ins.xlsx"
    assert (
        run("insurance", "statement", "ins-2024-01#1", "--out", str(out), db=db_url).returncode == 0
    )
    sheet = load_workbook(out)["拨付单"]
    rows = [r for r in sheet.iter_rows(values_only=True) if r[0] in ("YGT01", "YGT02", "合计")]
    assert len(rows) == 3
    via_payout = tmp_path / "via-payout.xlsx"
    assert (
        run("payout", "statement", "ins-2024-01#1", "--out", str(via_payout), db=db_url).returncode
        == 0
    )
    assert via_payout.read_bytes() == out.read_bytes()
    replay = run("insurance", "replay", "ins-2024-01#1", db=db_url)
    assert replay.returncode == 0 and "identical" in replay.stdout
    listed = run("insurance", "list", db=db_url)
    assert "ins-2024-01#1" in listed.stdout and "approved" in listed.stdout
    assert run("audit", "verify", db=db_url).returncode == 0


def test_the_zhijiang_split_from_the_command_line(reference_url: str, tmp_path: Path) -> None:
    db_url = reference_url
    for kind, path in fund_files(tmp_path).items():
        assert run("insurance", "import", kind, str(path), db=db_url).returncode == 0
    assert (
        run(
            "insurance", "policy", "load", "zhijiang_insurance", "--reference", "x", db=db_url
        ).returncode
        == 0
    )
    doc = json.loads(run("insurance", "compute", "--year", "2024", "--json", db=db_url).stdout)
    fund = {k: Decimal(v) for k, v in doc["figures"].items()}
    allotted = sum(Decimal(c["figures"]["allotment"]) for c in doc["communities"])
    withheld = fund["reserve"] + fund["critical_illness"] + fund["out_of_area"]
    assert withheld + allotted + fund["unallocated"] == fund["revenue"] == Decimal("900000.00")
    made = run("insurance", "run", "--quarter", "2024-Q1", db=db_url)
    assert made.returncode == 0, made.stderr
    assert "ins-2024-Q1#1" in made.stdout
