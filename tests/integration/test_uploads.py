"""The upload use case (`application.uploads.import_upload`), on SQLite and on PostgreSQL:
every kind through one call, the clerk's checks, problems named after the upload."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from dangliang.application import INPUT_KINDS, INSURANCE_KINDS, Dangliang
from dangliang.application.accounts import Principal
from dangliang.application.uploads import (
    CLERK_KINDS,
    IMPORT_KINDS,
    KIND_LABELS,
    Forbidden,
    UploadResult,
    import_upload,
    safe_name,
)
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.errors import DomainError
from dangliang.domain.problems import ProblemsFound
from dangliang.domain.service import ServiceRecord
from dangliang.ledger.compact import SERVICE_RECORD_TOPIC

TODAY = date(2025, 1, 31)
ADMIN = Principal("局管理员", "admin", None, None)
AUDITOR = Principal("财政审计", "auditor", None, None)
RECORDED = get_topic(ServiceRecord.Recorded)


def clerk_of(app: Dangliang, institution: str = "C01") -> Principal:
    """A clerk as `Users.authenticate` makes one: their institution and its village clinics."""
    scope = {c for c, (_, parent) in app.institutions().items() if institution in (c, parent)}
    return Principal(f"{institution}填报员", "clerk", institution, frozenset(scope))


def rewrite(
    source: Path, target: Path, change: Callable[[dict[str, str]], dict[str, str] | None]
) -> Path:
    """`source`'s rows through `change` (None drops a row) into `target`."""
    with source.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = [r for r in (change(dict(row)) for row in reader) if r is not None]
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return target


def records_stored(app: Dangliang) -> int:
    found = app.log.app_recorder.select_notifications(
        start=1, limit=100_000, topics=[RECORDED, SERVICE_RECORD_TOPIC]
    )
    return len(found)


def upload(
    app: Dangliang, kind: str, path: Path, who: Principal = ADMIN, name: str = ""
) -> UploadResult:
    return import_upload(app, kind, path, who, display_name=name or path.name, today=TODAY)


# ---- without a database -------------------------------------------------------------------


def test_every_kind_has_a_chinese_label() -> None:
    assert set(IMPORT_KINDS) == set(KIND_LABELS)
    assert {*INPUT_KINDS, *INSURANCE_KINDS, *CLERK_KINDS} <= set(IMPORT_KINDS)
    assert KIND_LABELS["services"] == "服务记录" and KIND_LABELS["claims"] == "医保结算记录"
    assert all(label and not label.isascii() for label in KIND_LABELS.values())


def test_safe_name_keeps_the_suffix_and_nothing_of_the_path() -> None:
    assert safe_name("../../etc/服务 记录.xlsx", "services") == "服务_记录.xlsx"
    assert safe_name(".hidden.csv", "staff") == "hidden.csv"
    assert safe_name(None, "claims") == "claims.csv"
    assert safe_name("noext", "staff") == "noext.csv"


# ---- service records ----------------------------------------------------------------------


def test_a_clean_file_is_imported_and_a_second_time_changes_nothing(
    reference_app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    app = reference_app
    stored = rewrite(county.files["services"], tmp_path / "upload-7f3a.csv", lambda r: r)
    first = upload(app, "services", stored, name="三月服务记录.csv")
    assert (first.kind, first.file, first.rows) == ("services", "三月服务记录.csv", 3_000)
    assert (first.written, first.unchanged) == (3_000, 0)
    assert "三月服务记录.csv" in first.summary and str(stored) not in first.summary
    assert first.as_json() == {
        "kind": "services",
        "file": "三月服务记录.csv",
        "rows": 3_000,
        "accepted": 3_000,
        "unchanged": 0,
        "summary": first.summary,
    }
    assert records_stored(app) == 3_000

    again = upload(app, "services", stored, name="三月服务记录.csv")
    assert (again.rows, again.written, again.unchanged) == (3_000, 0, 3_000)
    assert records_stored(app) == 3_000


def test_a_file_with_errors_is_refused_with_every_problem_named_after_the_upload(
    reference_app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    app = reference_app
    spoilt: dict[int, str] = {}

    def spoil(row: dict[str, str]) -> dict[str, str]:
        n = len(spoilt) + 2  # the row number the next row gets
        spoilt[n] = ""
        if n % 500 == 7:
            spoilt[n] = "institution_code"
            return dict(row, institution_code="ZZ99")
        if n % 700 == 3:
            spoilt[n] = "quantity"
            return dict(row, quantity="1,5x")
        return row

    stored = rewrite(county.files["services"], tmp_path / "stored.csv", spoil)
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        upload(app, "services", stored, name="坏文件.csv")

    expected = {(row, column) for row, column in spoilt.items() if column}
    assert len(expected) > 4
    assert {(p.row, p.column) for p in caught.value.problems} == expected
    assert {p.file for p in caught.value.problems} == {"坏文件.csv"}
    assert app.log.head() == head  # nothing written


def test_a_clerk_imports_their_own_rows_and_nothing_of_another_institution(
    reference_app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    app = reference_app
    clerk = clerk_of(app)
    services = county.files["services"]
    head = app.log.head()
    with pytest.raises(Forbidden) as caught:
        upload(app, "services", services, who=clerk, name="全县.csv")
    outside = caught.value.problems
    assert outside and all(p.column == "institution_code" and p.file == "全县.csv" for p in outside)
    assert all("is not C01" in p.message_en for p in outside)
    assert len(outside) == sum(
        1
        for r in csv.DictReader(services.open(encoding="utf-8"))
        if r["institution_code"][:3] != "C01"
    )
    assert app.log.head() == head

    own = rewrite(
        services, tmp_path / "c01.csv", lambda r: r if r["institution_code"][:3] == "C01" else None
    )
    result = upload(app, "services", own, who=clerk)
    assert result.written == result.rows > 0
    assert records_stored(app) == result.rows


def test_who_may_import_what(reference_app: Dangliang, county: GeneratedCounty) -> None:
    app = reference_app
    head = app.log.head()
    with pytest.raises(Forbidden, match="clerk may import services and corrections only"):
        upload(app, "institutions", county.files["institutions"], who=clerk_of(app))
    with pytest.raises(Forbidden, match="role auditor may not import"):
        upload(app, "services", county.files["services"], who=AUDITOR)
    with pytest.raises(DomainError, match="unknown import kind") as unknown:
        upload(app, "salaries", county.files["services"])
    assert not isinstance(unknown.value, Forbidden)
    assert app.log.head() == head


# ---- the other kinds ----------------------------------------------------------------------


def test_reference_inputs_and_fund_files_go_through_the_same_call(
    reference_app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    app = reference_app
    again = upload(app, "institutions", county.files["institutions"])
    assert again.written == 0 and again.unchanged == again.rows > 0

    scores = upload(app, "scores", county.files["scores"])
    assert scores.written == scores.rows > 0
    assert upload(app, "scores", county.files["scores"]).written == 0

    fund = tmp_path / "stored-fund.csv"
    fund.write_text(
        "year,revenue,prior_spending,reference\n2024,900000.00,600000.00,医保〔2024〕1号\n",
        encoding="utf-8",
    )
    first = upload(app, "fund_years", fund, name="基金年度.csv")
    assert (first.kind, first.file, first.rows, first.written) == (
        "fund_years",
        "基金年度.csv",
        1,
        1,
    )
    assert upload(app, "fund_years", fund).written == 0

    bad = tmp_path / "stored-bad.csv"
    bad.write_text("year,revenue,prior_spending,reference\n2024,abc,1,x\n", encoding="utf-8")
    with pytest.raises(ProblemsFound) as caught:
        upload(app, "fund_years", bad, name="错.csv")
    assert {(p.file, p.row, p.column) for p in caught.value.problems} == {("错.csv", 2, "revenue")}
