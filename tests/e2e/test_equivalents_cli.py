"""`dangliang equivalents` and `dangliang projections` through the command line."""

from __future__ import annotations

import json
import subprocess

from dangliang.application import bootstrap
from dangliang.settings import Settings
from tests.e2e.cli import dangliang


def run(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    """`dangliang ARGS --db DB` as the actor "e2e" (see tests/e2e/cli.py)."""
    return dangliang(*args, "--db", db, env={"DANGLIANG_ACTOR": "e2e"})


def test_equivalents_json_status_and_rebuild(records_url: str) -> None:
    db_url = records_url
    app = bootstrap(Settings(db_url))
    try:
        expected = app.equivalents("2024-03")
    finally:
        app.close()

    status = run("projections", "status", db=db_url)
    assert status.returncode == 0, status.stderr
    assert "equivalents_a" in status.stdout and "up to date" in status.stdout

    out = run("equivalents", "--period", "2024-03", "--json", db=db_url)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["period"] == "2024-03"
    assert answer["as_of"] is None
    assert answer["institutions"] == expected["institutions"]
    first = answer["institutions"][0]
    assert set(first) >= {
        "code",
        "basic_medical",
        "basic_public_health",
        "non_compliant_public_health",
        "records",
    }
    assert all(
        isinstance(first[k], str) and len(first[k].split(".")[1]) == 4
        for k in ("basic_medical", "basic_public_health", "non_compliant_public_health")
    )

    by_item = run(
        "equivalents",
        "--period",
        "2024-03",
        "--institution",
        first["code"],
        "--by",
        "item",
        "--json",
        db=db_url,
    )
    detail = json.loads(by_item.stdout)["institutions"]
    assert [i["code"] for i in detail] == [first["code"]]
    assert sum(int(i["records"]) for i in detail[0]["item"]) == first["records"]

    rebuilt = run("projections", "rebuild", "--blue-green", db=db_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt to log position" in rebuilt.stdout
    status = run("projections", "status", db=db_url)
    assert "equivalents_b" in status.stdout and "behind" not in status.stdout
    again = json.loads(run("equivalents", "--period", "2024-03", "--json", db=db_url).stdout)
    assert again["institutions"] == answer["institutions"]

    as_of = run("equivalents", "--period", "2024-03", "--as-of", "2000-01-01", "--json", db=db_url)
    assert json.loads(as_of.stdout)["institutions"] == []  # nothing was recorded in 2000

    bad = run("equivalents", "--period", "2024-13", db=db_url)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
