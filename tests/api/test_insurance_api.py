"""`/insurance/…` on both backends: roles (a clerk sees only their own community), uploads
(refused whole with every problem, re-import changes nothing), figures, explain, what-if,
policy changes, fund runs with maker-checker approval through `/payout-runs/…`, statements
(the same bytes as the CLI) and replay."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from tests.api.conftest import FUND_FILES, World


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if "json" in response.headers.get("content-type", "") else response


def test_a_clerk_sees_only_their_community(world: World) -> None:
    mine = ok(world.get("/insurance/communities", "clerk"))
    assert [c["code"] for c in mine] == ["YGT01"]
    assert {c["code"] for c in ok(world.get("/insurance/communities", "auditor"))} == {
        "YGT01",
        "YGT02",
    }
    figures = ok(world.get("/insurance/figures", "clerk", period="2024"))
    assert [c["code"] for c in figures["communities"]] == ["YGT01"]
    assert "figures" not in figures and "totals" not in figures  # no county-wide figures
    refused = world.get("/insurance/explain/YGT02", "clerk", period="2024")
    assert refused.status_code == 403
    assert world.get("/insurance/records/YGT02", "clerk", year=2024).status_code == 403
    own = ok(world.get("/insurance/records/YGT01", "clerk", year=2024, limit=5))
    assert len(own["claims"]) == 5 and all(c["community"] == "YGT01" for c in own["claims"])
    assert world.post("/insurance/runs", "clerk", {"period": "2024-01"}).status_code == 403
    assert world.post("/insurance/what-if", "clerk", {"period": "2024", "set": []}).status_code in (
        403,
        422,
    )


def test_figures_and_explain_come_from_the_log(world: World) -> None:
    doc = ok(world.get("/insurance/figures", "auditor", period="2024"))
    spent = sum(Decimal(line.rsplit(",", 1)[1]) for line in FUND_FILES["claims"].splitlines()[1:])
    assert sum(Decimal(c["figures"]["spending"]) for c in doc["communities"]) == spent
    assert doc["rule"] == "deqing" and doc["figures"]["prior_spending"] == "600000.00"
    why = ok(world.get("/insurance/explain/YGT01", "clerk", period="2024", records=3))
    assert why["figures"] == next(c for c in doc["communities"] if c["code"] == "YGT01")["figures"]
    assert len(why["claims"]) == 3
    clauses = [s["clause"] for s in why["steps"]]
    assert any("70%" in c for c in clauses)


def test_uploads_are_refused_whole_and_idempotent(world: World, tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text(FUND_FILES["claims"], encoding="utf-8")
    files = {"file": ("claims.csv", path.read_bytes())}
    assert world.post("/insurance/imports/claims", "auditor", files=files).status_code == 403
    again = ok(world.post("/insurance/imports/claims", "admin", files=files))
    assert "0 new" in again["summary"]
    bad = (
        "claim_id,insured_ref,community_code,institution_code,out_of_area,settled_on,"
        "fund_amount\nZ1,P1,YGT09,C01,否,2024-02-03,12.34\nZ2,P1,YGT01,C01,否,2024-02-30,1\n"
        "Z3,P1,YGT01,C01,否,2024-02-03,12.345\n"
    )
    refused = world.post(
        "/insurance/imports/claims", "admin", files={"file": ("bad.csv", bad.encode())}
    )
    assert refused.status_code == 422
    problems = refused.json()["problems"]
    assert {(p["file"], p["row"], p["column"]) for p in problems} == {
        ("bad.csv", 2, "community_code"),
        ("bad.csv", 3, "settled_on"),
        ("bad.csv", 4, "fund_amount"),
    }


def test_what_if_and_policy_changes(world: World) -> None:
    head = world.service.catch_up()
    found = ok(
        world.post(
            "/insurance/what-if", "auditor", {"period": "2024", "set": ["deqing.funding_cap=0.5"]}
        )
    )
    assert found["nothing_written"] and world.service.catch_up() == head
    cap = found["fund"]["budget_total"]
    assert Decimal(cap["scenario"]) <= Decimal("450000.00") < Decimal(cap["baseline"])
    change = {
        "path": "deqing.surplus.direct_share",
        "value": "0.60",
        "start": "2030-01-01",
        "reason": "领导小组会议纪要〔2029〕3号",
        "approver": "医保局",
    }
    assert world.post("/insurance/policy/changes", "auditor", change).status_code == 403
    ok(world.post("/insurance/policy/changes", "admin", change), 201)
    shown = ok(world.get("/insurance/policy", "clerk"))
    assert any(
        r["path"] == change["path"] and r["effective_from"] == "2030-01-01"
        for r in shown["parameters"]
    )


def test_a_fund_run_through_the_api(world: World) -> None:
    run = ok(world.post("/insurance/runs", "admin", {"period": "2024-02"}), 201)
    run_id = run["run_id"]
    assert run_id.startswith("ins-2024-02#") and run["kind"] == "insurance_advance"
    quoted = run_id.replace("#", "%23")
    own = world.post(f"/payout-runs/{quoted}/approve", "admin", {"reference": "审批"})
    assert own.status_code == 409  # maker-checker
    ok(world.post(f"/payout-runs/{quoted}/approve", "auditor", {"reference": "审批 1"}))
    shown = ok(world.get(f"/insurance/runs/{quoted}", "clerk"))
    assert [c["code"] for c in shown["communities"]] == ["YGT01"] and "totals" not in shown
    assert shown["state"] == "approved"
    xlsx = ok(world.get(f"/insurance/runs/{quoted}/statement", "auditor"))
    path = world.service.write_insurance_statement(run_id, Path(world.county.out_dir) / "s.xlsx")
    assert xlsx.content == path.read_bytes()
    sheet = load_workbook(io.BytesIO(xlsx.content))["拨付单"]
    assert any(row[0] == "合计" for row in sheet.iter_rows(values_only=True))
    assert world.get(f"/payout-runs/{quoted}/statement", "auditor").status_code == 409
    replay = ok(world.get(f"/payout-runs/{quoted}/replay", "auditor"))
    assert replay["identical"]
    assert run_id in {r["run_id"] for r in ok(world.get("/insurance/runs", "clerk"))}


def test_the_zhijiang_rule_through_the_api(prepared_app: Any, county: Any) -> None:
    from fastapi.testclient import TestClient

    from dangliang.api import create_app
    from tests.api.conftest import API, prepare_fund
    from tests.conftest import load_reference

    def prepare(app: Any) -> None:
        load_reference(app, county)
        prepare_fund(app)  # adopts De Qing; Zhijiang is adopted on top below

    app = prepared_app("insurance-zhijiang-api", prepare)
    app.adopt_policy("zhijiang_insurance", reference="枝江", actor="tester", scheme="insurance")
    token = app.users.add("医保管理员", role="admin", institution=None, actor="tester")
    client = TestClient(create_app(app))
    auth = {"Authorization": f"Bearer {token}"}
    doc = ok(client.get(f"{API}/insurance/figures", params={"period": "2024"}, headers=auth))
    fund = {k: Decimal(v) for k, v in doc["figures"].items()}
    allotted = sum(Decimal(c["figures"]["allotment"]) for c in doc["communities"])
    withheld = fund["reserve"] + fund["critical_illness"] + fund["out_of_area"]
    assert withheld + allotted + fund["unallocated"] == fund["revenue"] == Decimal("900000.00")
    monthly = client.post(f"{API}/insurance/runs", json={"period": "2024-01"}, headers=auth)
    assert monthly.status_code == 409 and "quarterly" in monthly.text
    run = ok(client.post(f"{API}/insurance/runs", json={"period": "2024-Q1"}, headers=auth), 201)
    assert run["run_id"] == "ins-2024-Q1#1" and run["rule"] == "zhijiang"
