"""The HTTP API end to end, on SQLite and PostgreSQL: roles on every endpoint, the monthly
workflow (import → compute → run → approve → statement), the audit workflow (replay, diff,
verify, explain) and staff distribution with payslips."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from dangliang.api import PREFIX
from dangliang.domain.imports import DataImport
from dangliang.payouts import runs as payouts
from dangliang.payouts.statements import write_statement
from tests.api.conftest import World, upload


def events_since(world: World, position: int) -> list[Any]:
    log = world.service.log
    found = log.app_recorder.select_notifications(start=position + 1, limit=100_000)
    return [log.mapper.to_domain_event(n) for n in found]


def rewrite(source: Path, target: Path, change: Any) -> Path:
    """A copy of a CSV file with `change(row)` applied to each data row (None drops it)."""
    with source.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    kept = [rows[0], *(r for r in (change(list(row)) for row in rows[1:]) if r is not None)]
    with target.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(kept)
    return target


# ---- authentication and roles ---------------------------------------------------------------


def test_every_route_but_health_needs_a_token(world: World) -> None:
    paths = world.client.get(PREFIX + "/openapi.json").json()["paths"]
    checked = 0
    for template, operations in paths.items():
        if template == PREFIX + "/health":
            continue
        path = template.replace("{run_id}", "2024-01%231").replace("{kind}", "services")
        for placeholder in ("{code}", "{staff_id}", "{institution}"):
            path = path.replace(placeholder, "C01")
        for method in operations:
            response = world.client.request(method.upper(), path)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["message_en"].startswith("a token is required")
            checked += 1
    assert checked >= 20
    assert world.client.get(PREFIX + "/health").json()["status"] == "ok"


def test_a_bad_replaced_or_revoked_token_is_refused(world: World) -> None:
    users = world.service.users
    token = users.add("临时用户", role="auditor", institution=None, actor="tester")
    headers = {"Authorization": f"Bearer {token}"}
    assert world.client.get(PREFIX + "/me", headers=headers).json()["role"] == "auditor"
    for bad in (token + "x", token[:-1], "dl_" + "0" * 32 + "_secret", "not-a-token", ""):
        response = world.client.get(PREFIX + "/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad
    new = users.issue_token("临时用户", actor="tester")
    assert world.client.get(PREFIX + "/me", headers=headers).status_code == 401
    headers = {"Authorization": f"Bearer {new}"}
    assert world.client.get(PREFIX + "/me", headers=headers).status_code == 200
    users.revoke("临时用户", reason="离职", actor="tester")
    assert world.client.get(PREFIX + "/me", headers=headers).status_code == 401


def test_tokens_are_not_in_the_log(world: World) -> None:
    token = world.tokens["admin"]
    secret = token.split("_", 2)[2]  # dl_<user id>_<secret>; the secret may contain "_"
    assert len(secret) >= 40
    log = world.service.log
    head = log.head()
    stored = log.app_recorder.select_notifications(start=1, limit=head)
    assert not any(secret.encode() in n.state for n in stored)


def test_the_auditor_reads_approves_and_verifies_but_nothing_else(world: World) -> None:
    county = world.county
    refused = [
        upload(world, "services", county.files["services"], who="auditor"),
        upload(world, "scores", county.files["scores"], who="auditor"),
        world.post("/payout-runs", "auditor", {"period": "2024-04"}),
        world.post("/distribution-runs", "auditor", {"period": "2024"}),
        world.post("/payout-runs/2024-04%231/paid", "auditor", {"reference": "x"}),
        world.post(
            "/policy/changes",
            "auditor",
            {
                "path": "unit_price.basic_medical",
                "value": "13",
                "effective_from": "2025-01-01",
                "reason": "r",
                "approver": "a",
            },
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "role auditor may not do this" in response.json()["message_en"]
    assert world.get("/compensation", "auditor", period="2024").status_code == 200
    verified = world.post("/audit/verify", "auditor").json()
    assert verified["ok"] is True and verified["late_seals"] == [] and verified["unchained"] == 0


def test_a_clerk_sees_only_their_institution_and_its_village_clinics(world: World) -> None:
    me = world.get("/me", "clerk").json()
    assert me["institution"] == "C01" and "C01V01" in me["scope"] and "C02" not in me["scope"]
    codes = {
        r["code"] for r in world.get("/equivalents", "clerk", period="2024").json()["institutions"]
    }
    assert codes and codes <= set(me["scope"])
    assert {r["code"] for r in world.get("/institutions", "clerk").json()} == set(me["scope"])

    computed = world.get("/compensation", "clerk", period="2024").json()
    assert {r["code"] for r in computed["institutions"]} <= set(me["scope"])
    assert computed.get("totals") is None  # the county's totals are not a clerk's to read
    own = world.get("/compensation", "clerk", period="2024", institution="C01V01").json()
    assert [r["code"] for r in own["institutions"]] == ["C01V01"]

    for path, params in (
        ("/equivalents", {"period": "2024", "institution": "C02"}),
        ("/compensation", {"period": "2024", "institution": "C02"}),
        ("/distribution", {"period": "2024", "institution": "C02"}),
        ("/records", {"period": "2024", "institution": "C02"}),
        ("/explain/institution/C02", {"period": "2024"}),
        ("/explain/institution/C02V01", {"period": "2024"}),
    ):
        response = world.get(path, "clerk", **params)
        assert response.status_code == 403, (path, response.text)
        assert "may only see C01" in response.json()["message_en"]
    assert world.get("/explain/institution/C01", "clerk", period="2024").status_code == 200
    for response in (
        world.post(
            "/compensation/what-if",
            "clerk",
            {"period": "2024", "changes": [{"path": "a", "value": "1"}]},
        ),
        world.post("/audit/verify", "clerk"),
        world.post("/payout-runs", "clerk", {"period": "2024-05"}),
        upload(world, "scores", world.county.files["scores"], who="clerk"),
    ):
        assert response.status_code == 403, response.text


def test_a_clerk_imports_their_own_records_only(world: World, tmp_path: Path) -> None:
    services = world.county.files["services"]
    head = world.service.log.head()
    mixed = upload(world, "services", services, who="clerk")
    assert mixed.status_code == 403
    body = mixed.json()
    assert body["problems"] and body["problems"][0]["column"] == "institution_code"
    assert body["problems"][0]["row"] >= 2 and body["problems"][0]["file"] == services.name
    assert all("is not C01" in p["message_en"] for p in body["problems"])
    assert world.service.log.head() == head  # nothing written

    # A fresh record of C01's (the county's file is already imported by the bureau).
    def own_new(row: list[str]) -> list[str] | None:
        if not row[1].startswith("C01"):
            return None
        row[0] = "CLERK-" + row[0]
        return row

    own = rewrite(services, tmp_path / "c01.csv", own_new)
    response = upload(world, "services", own, who="clerk")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == result["rows"] > 0
    recorded = [e for e in events_since(world, head) if hasattr(e, "actor")]
    assert recorded and {e.actor for e in recorded} == {"C01填报员"}  # the acting user
    assert any(isinstance(e, DataImport.Event) for e in recorded)
    again = upload(world, "services", own, who="clerk").json()
    assert (again["accepted"], again["unchanged"]) == (0, result["rows"])  # nothing twice


# ---- imports ---------------------------------------------------------------------------------


def test_a_bad_file_is_refused_whole_with_every_problem(world: World, tmp_path: Path) -> None:
    def spoil(row: list[str]) -> list[str]:
        if row[0].endswith("7"):
            row[1] = "ZZ99"
        return row

    bad = rewrite(world.county.files["services"], tmp_path / "bad.csv", spoil)
    head = world.service.log.head()
    response = upload(world, "services", bad)
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert len(body["problems"]) > 1 and "nothing was written" in body["message_en"]
    first = body["problems"][0]
    assert (first["file"], first["column"]) == ("bad.csv", "institution_code")
    assert isinstance(first["row"], int) and "unknown institution" in first["message_en"]
    assert world.service.log.head() == head


def test_an_unreadable_upload_is_a_problem_not_a_crash(world: World) -> None:
    response = world.post(
        "/imports/scores", "admin", files={"file": ("scores.xlsx", b"not a workbook")}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["file"] == "scores.xlsx"
    missing = world.client.post(PREFIX + "/imports/scores", headers=world.auth("admin"))
    assert missing.status_code == 422 and missing.json()["problems"][0]["column"] == "body.file"
    unknown = world.post("/imports/salaries", "admin", files={"file": ("a.csv", b"x")})
    assert unknown.status_code == 422


def test_reimporting_reference_data_changes_nothing(world: World) -> None:
    head = world.service.log.head()
    response = upload(world, "institutions", world.county.files["institutions"])
    assert response.status_code == 200
    assert response.json()["accepted"] == 0
    assert world.service.log.head() == head


# ---- the monthly workflow ----------------------------------------------------------------------


def test_run_approve_pay_and_download_the_statement(world: World, tmp_path: Path) -> None:
    created = world.post("/payout-runs", "admin", {"period": "2024-02"})
    assert created.status_code == 201, created.text
    run = created.json()
    run_id, path = run["run_id"], "/payout-runs/" + run["run_id"].replace("#", "%23")
    assert (run["state"], run["computed_by"], run["kind"]) == (
        "draft",
        "局管理员",
        "monthly_advance",
    )
    computed = world.get("/compensation", "admin", period="2024-02").json()
    assert run["totals"]["advances"] == computed["totals"]["advances"]

    own = world.post(path + "/approve", "admin", {"reference": "审批-1"})
    assert own.status_code == 409 and "computed" in own.json()["message_en"]  # maker-checker
    assert world.post(path + "/approve", "auditor", {"reference": ""}).status_code == 422
    approved = world.post(path + "/approve", "auditor", {"reference": "审批-1"}).json()
    assert (approved["state"], approved["approved_by"]) == ("approved", "财政审计")
    assert world.post(path + "/approve", "auditor", {"reference": "again"}).status_code == 409
    paid = world.post(path + "/paid", "admin", {"reference": "国库-1"}).json()
    assert (paid["state"], paid["paid_reference"]) == ("paid", "国库-1")

    recorded = world.service.payout_run(run_id)
    assert [h["actor"] for h in recorded.history][-2:] == ["财政审计", "局管理员"]
    listed = world.get("/payout-runs", "clerk", period="2024-02").json()
    assert [r["run_id"] for r in listed] == [run_id] and "institutions" not in listed[0]

    xlsx = world.get(path + "/statement", "auditor")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith(
        "application/vnd.openxmlformats"
    )
    expected = write_statement(payouts.run_json(recorded), tmp_path / "s.xlsx").read_bytes()
    assert xlsx.content == expected  # the same bytes as `dangliang payout statement`
    as_csv = world.get(path + "/statement", "auditor", format="csv")
    table = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert len(table) == len(run["institutions"]) + 2  # header, one row each, totals
    as_json = world.get(path + "/statement", "auditor", format="json").json()
    assert as_json["totals"] == paid["totals"] and as_json["state"] == "paid"
    assert world.get(path + "/statement", "clerk").status_code == 403

    clerk_view = world.get(path, "clerk").json()
    assert {r["code"] for r in clerk_view["institutions"]} <= set(
        world.get("/me", "clerk").json()["scope"]
    )
    assert clerk_view.get("totals") is None


def test_a_period_not_yet_ended_or_a_bad_period_is_refused(world: World) -> None:
    assert world.post("/payout-runs", "admin", {"period": "2100-01"}).status_code == 409
    for bad in ("2024-13", "24", "2024-1", "1900", "abcd"):
        response = world.post("/payout-runs", "admin", {"period": bad})
        assert response.status_code == 422, (bad, response.text)
        assert world.get("/equivalents", "admin", period=bad).status_code == 422


def test_missing_and_malformed_runs(world: World) -> None:
    missing = world.get("/payout-runs/2019-01%237", "admin")
    assert missing.status_code == 404 and missing.json()["message_en"] == "no run 2019-01#7"
    assert world.get("/payout-runs/nonsense", "admin").status_code == 422
    assert world.get("/payout-runs/2019-01%237/replay", "auditor").status_code == 404


# ---- the audit workflow ------------------------------------------------------------------------


def test_replay_diff_verify_and_explain(world: World) -> None:
    first = world.post("/payout-runs", "admin", {"period": "2024-06"}).json()
    path = "/payout-runs/" + first["run_id"].replace("#", "%23")
    replay = world.get(path + "/replay", "auditor").json()
    assert replay["identical"] is True and replay["differences"] == []
    assert replay["rule_set"] == replay["rule_set_current"] == "compensation v1"

    rejected = world.post(path + "/reject", "auditor", {"reason": "待补录"}).json()
    assert rejected["state"] == "rejected" and rejected["rejected_reason"] == "待补录"
    change = {
        "path": "unit_price.basic_medical",
        "value": "13.50",
        "effective_from": "2024-06-01",
        "reason": "调价测试",
        "approver": "卫健、财政",
    }
    changed = world.post("/policy/changes", "admin", change)
    assert changed.status_code == 200 and changed.json()["recorded"] is True
    shown = world.get("/policy", "clerk", on="2024-06-15").json()["parameters"]
    price = next(p for p in shown if p["path"] == "unit_price.basic_medical")
    assert (price["value"], price["effective_from"]) == ("13.5", "2024-06-01")

    second = world.post("/payout-runs", "admin", {"period": "2024-06"}).json()
    diff = world.get("/payout-runs/diff", "auditor", a=first["run_id"], b=second["run_id"]).json()
    assert json.dumps(diff, ensure_ascii=False).count("unit_price.basic_medical") >= 1
    assert (
        world.get("/payout-runs/diff", "clerk", a=first["run_id"], b=second["run_id"]).status_code
        == 403
    )
    world.post(
        "/payout-runs/" + second["run_id"].replace("#", "%23") + "/reject",
        "auditor",
        {"reason": "测试"},
    )

    verified = world.post("/audit/verify", "auditor").json()
    assert verified["ok"] is True and verified["runs_checked"] >= 2
    bad_head = world.post("/audit/verify?expected_head=nonsense", "auditor")
    assert bad_head.status_code == 422

    computed = world.get("/compensation", "auditor", period="2024").json()
    c01 = next(r for r in computed["institutions"] if r["code"] == "C01")
    why = world.get("/explain/institution/C01", "auditor", period="2024").json()
    assert json.dumps(why, ensure_ascii=False).count(c01["total"]) >= 1
    assert world.get("/explain/institution/ZZ9", "auditor", period="2024").status_code == 404

    records = world.get("/records", "clerk", institution="C01", period="2024").json()
    equivalents = world.get("/equivalents", "clerk", period="2024", institution="C01").json()
    assert len(records["records"]) == equivalents["institutions"][0]["records"]


def test_as_of_a_position_the_past_is_unchanged(world: World, tmp_path: Path) -> None:
    before = world.get("/equivalents", "admin", period="2024-03").json()
    services = world.county.files["services"]

    def march_again(row: list[str]) -> list[str] | None:
        if not row[1].startswith("C03"):
            return None
        row[0] = "LATE-" + row[0]
        return row

    late = rewrite(services, tmp_path / "late.csv", march_again)
    assert upload(world, "services", late).status_code == 200
    now = world.get("/equivalents", "admin", period="2024-03").json()
    then = world.get("/equivalents", "admin", period="2024-03", position=before["position"]).json()
    assert then["institutions"] == before["institutions"] != now["institutions"]
    assert world.get("/equivalents", "admin", period="2024", position=10**12).status_code == 422


def test_what_if_beside_the_baseline(world: World) -> None:
    body = {"period": "2024", "changes": [{"path": "unit_price.basic_medical", "value": "20"}]}
    head = world.service.log.head()
    found = world.post("/compensation/what-if", "auditor", body)
    assert found.status_code == 200, found.text
    diff = found.json()
    assert diff["written"] is False and world.service.log.head() == head
    assert any(r["difference"] != "0.00" for r in diff["institutions"])
    wrong = world.post(
        "/compensation/what-if",
        "auditor",
        {"period": "2024", "changes": [{"path": "unit_price.no_such", "value": "20"}]},
    )
    assert wrong.status_code == 422 and wrong.json()["problems"][0]["column"] == "changes.0"


# ---- staff distribution ----------------------------------------------------------------------


def test_distribution_run_payslips_and_sheets(world: World) -> None:
    created = world.post("/distribution-runs", "admin", {"period": "2024"})
    assert created.status_code == 201, created.text
    run = created.json()
    path = "/payout-runs/" + run["run_id"].replace("#", "%23")
    c01 = next(i for i in run["institutions"] if i["code"] == "C01")
    person = c01["staff"][0]
    slip = world.get(f"{path}/payslips/{person['staff_id']}", "clerk")
    assert slip.status_code == 200 and slip.headers["content-type"].startswith("text/html")
    assert person["staff_id"] in slip.text and person["name"] in slip.text
    assert world.get(f"{path}/payslips/{person['staff_id']}", "clerk2").status_code == 403
    assert world.get(f"{path}/payslips/NOBODY", "admin").status_code == 404
    sheet = world.get(f"{path}/sheets/C01", "clerk")
    assert sheet.status_code == 200 and sheet.content[:2] == b"PK"
    assert world.get(f"{path}/sheets/C01", "clerk2").status_code == 403
    assert world.get(f"{path}/statement", "admin").status_code == 409  # payslips, not a statement
    diff = world.get("/payout-runs/diff", "auditor", a=run["run_id"], b=run["run_id"])
    assert diff.status_code == 409 and "only payout runs" in diff.json()["message_en"]

    why = world.get(f"/explain/staff/{person['staff_id']}", "clerk", period="2024")
    assert why.status_code == 200 and why.json()["institutions"][0]["institution"] == "C01"
    assert (
        world.get(f"/explain/staff/{person['staff_id']}", "clerk2", period="2024").status_code
        == 403
    )
    computed = world.get("/distribution", "clerk", period="2024").json()
    assert {i["code"] for i in computed["institutions"]} <= set(
        world.get("/me", "clerk").json()["scope"]
    )


@pytest.mark.parametrize("who", ["admin", "auditor", "clerk"])
def test_openapi_documents_every_route(world: World, who: str) -> None:
    schema = world.client.get(PREFIX + "/openapi.json").json()
    assert "bearerAuth" in json.dumps(schema) or "HTTPBearer" in json.dumps(schema)
    assert {
        "/api/v1/imports/{kind}",
        "/api/v1/payout-runs/{run_id}/approve",
        "/api/v1/audit/verify",
    } <= set(schema["paths"])
    assert world.get("/me", who).json()["role"] == who.rstrip("2")
