"""Importing the insurance fund's small facts — medical communities, monthly enrolment counts,
the fund's years, the communities' scores — on SQLite and on PostgreSQL, through
`Dangliang.import_insurance` only. Claims and enrolment: `test_insurance_import.py`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from dangliang.application import INSURANCE_KINDS, Dangliang
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.claims import EnrolmentCount
from dangliang.domain.community import CommunityYear, FundYear, MedicalCommunity
from dangliang.domain.errors import DomainError
from dangliang.domain.ids import (
    community_id,
    community_year_id,
    enrolment_count_id,
    fund_year_id,
)
from dangliang.domain.imports import DataImport
from dangliang.domain.problems import ProblemsFound
from dangliang.importers.formats import FORMATS
from tests.conftest import PrepareApp, load_reference, sqlite_only
from tests.integration.insurance_files import (
    ACTOR,
    COMMUNITIES,
    TODAY,
    cells,
    communities_file,
    register_communities,
    the_problem,
    write_table,
)

COMPLETED = get_topic(DataImport.Completed)


@pytest.fixture
def reference(prepared_app: PrepareApp, county: GeneratedCounty) -> Dangliang:
    return prepared_app("reference", lambda a: load_reference(a, county))


@pytest.fixture
def app(prepared_app: PrepareApp, county: GeneratedCounty, tmp_path_factory: Any) -> Dangliang:
    """The county's reference data and its two medical communities."""
    folder = tmp_path_factory.mktemp("communities")

    def prepare(a: Dangliang) -> None:
        load_reference(a, county)
        register_communities(a, folder)

    return prepared_app("insurance", prepare)


def run(app: Dangliang, kind: str, path: Path) -> Any:
    return app.import_insurance(kind, path, actor=ACTOR, today=TODAY)


def new_topics(app: Dangliang, after: int) -> list[str]:
    return [n.topic for n in app.log.app_recorder.select_notifications(start=after + 1, limit=99)]


def table(path: Path, kind: str, rows: list[list[Any]], *, chinese: bool = False) -> Path:
    columns = FORMATS[kind].column_names
    return write_table(path, kind, columns, rows, chinese=chinese)


@sqlite_only  # refused before the database is read
def test_the_kinds_are_the_formats_and_others_are_refused(app: Dangliang, tmp_path: Path) -> None:
    assert set(INSURANCE_KINDS) <= set(FORMATS)
    assert all(INSURANCE_KINDS[k] == FORMATS[k].label_zh for k in INSURANCE_KINDS)
    path = table(tmp_path / "f.csv", "fund_years", [[2024, "1", None, "x"]])
    with pytest.raises(DomainError, match="unknown insurance data kind"):
        run(app, "claim", path)
    with pytest.raises(DomainError, match="only for claims and enrolment"):
        app.import_insurance("fund-years", path, actor=ACTOR, today=TODAY, skip_bad_rows=True)


# ---- communities ------------------------------------------------------------------------


def test_communities_are_registered_described_and_checked(
    reference: Dangliang, tmp_path: Path
) -> None:
    app = reference
    head = app.log.head()
    result = run(app, "communities", communities_file(tmp_path / "communities.csv"))
    assert (result.rows, result.inserted, result.already_present) == (2, 2, 0)
    assert new_topics(app, head) == [get_topic(MedicalCommunity.Registered)] * 2 + [COMPLETED]
    first: MedicalCommunity = app.log.repository.get(community_id("YGT01"))
    assert first.details == (
        "德清县人民医院医共体",
        "H001",
        "德清县人民医院",
        ["C01", "C02", "C03", "C04", "C05", "C06"],
    )
    assert app.registered_communities()["YGT02"] == ["C07", "C08", "C09", "C10", "C11", "C12"]

    # the same under Chinese headers in a workbook: nothing recorded
    head = app.log.head()
    zh = table(tmp_path / "医共体.xlsx", "communities", COMMUNITIES, chinese=True)
    assert (run(app, "communities", zh).inserted, new_topics(app, head)) == (0, [COMPLETED])

    # C06 moves to YGT02: both communities are described in one file
    moved = [
        [*COMMUNITIES[0][:4], "C01;C02;C03;C04;C05"],
        [*COMMUNITIES[1][:4], "C06;C07;C08;C09;C10;C11;C12"],
    ]
    head = app.log.head()
    assert run(app, "communities", table(tmp_path / "m.csv", "communities", moved)).inserted == 2
    assert new_topics(app, head) == [get_topic(MedicalCommunity.Described)] * 2 + [COMPLETED]
    assert "C06" in app.registered_communities()["YGT02"]

    bad = [
        ["YGT03", "新医共体", "H003", "某医院", "C99"],  # 2 unknown institution
        ["YGT04", "新医共体", "H004", "某医院", "C01V01"],  # 3 a village clinic
        ["YGT05", "新医共体", "H005", "某医院", "C01"],  # 4 already in YGT01
        ["YGT06", "", "H006", "某医院", "C12"],  # 5 no name (and C12 is YGT02's)
    ]
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        run(app, "communities", table(tmp_path / "bad.csv", "communities", bad))
    problems = caught.value.problems
    assert cells(problems) == {(2, "members"), (3, "members"), (4, "members"), (5, "name")}
    assert "unknown institution" in the_problem(problems, 2, "members").message_en
    assert "village clinic" in the_problem(problems, 3, "members").message_en
    assert "YGT01" in the_problem(problems, 4, "members").message_en
    assert app.log.head() == head


# ---- monthly enrolment counts -----------------------------------------------------------


def test_enrolment_counts_are_recorded_and_a_change_needs_a_reason(
    app: Dangliang, tmp_path: Path
) -> None:
    rows = [
        ["YGT01", "2024-01", "employee", "to_60", "1200", None],
        ["YGT01", "2024-01", "employee", "over_60", "300", None],
        ["YGT02", "2024-01", "resident", "over_60", "800", None],
    ]
    zh = [  # the same counts in Chinese
        ["YGT01", "2024年1月", "职工医保", "60周岁及以下", "1200", None],
        ["YGT01", "202401", "职工医保", "60周岁以上", "300", None],
        ["YGT02", "2024/1", "城乡居民医保", "60周岁以上", "800", None],
    ]
    result = run(app, "enrolment_counts", table(tmp_path / "c.csv", "enrolment_counts", rows))
    assert (result.rows, result.inserted) == (3, 3)
    key = enrolment_count_id("YGT02", "2024-01", "resident", "over_60")
    count: EnrolmentCount = app.log.repository.get(key)
    assert count.count == 800
    head = app.log.head()
    path = table(tmp_path / "参保人数.xlsx", "enrolment_counts", zh, chinese=True)
    assert (run(app, "enrolment_counts", path).inserted, new_topics(app, head)) == (0, [COMPLETED])

    changed = [rows[0], ["YGT02", "2024-01", "resident", "over_60", "820", None]]
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        run(app, "enrolment_counts", table(tmp_path / "d.csv", "enrolment_counts", changed))
    [problem] = caught.value.problems
    assert (problem.row, problem.column) == (3, "reason")
    assert "needs a reason" in problem.message_en and "更正原因" in problem.message_zh
    assert app.log.head() == head

    changed[1][5] = "补录漏报人员"
    bad = [*changed, ["YGT99", "2024-01", "resident", "to_60", "1", None], [*rows[0][:3], "x", "1"]]
    with pytest.raises(ProblemsFound) as caught:
        run(app, "enrolment_counts", table(tmp_path / "e.csv", "enrolment_counts", bad))
    assert cells(caught.value.problems) == {(4, "community_code"), (5, "age_band")}
    result = run(app, "enrolment_counts", table(tmp_path / "f.csv", "enrolment_counts", changed))
    assert (result.inserted, result.already_present) == (1, 1)
    assert new_topics(app, head) == [get_topic(EnrolmentCount.Corrected), COMPLETED]
    assert app.log.repository.get(key).count == 820


# ---- the fund's years and the communities' scores ---------------------------------------


def test_fund_years_are_recorded_and_superseded(app: Dangliang, tmp_path: Path) -> None:
    path = table(
        tmp_path / "f.csv", "fund_years", [[2024, "123456789.12", "110000000", "德医保〔2024〕1号"]]
    )
    assert run(app, "fund_years", path).inserted == 1
    year: FundYear = app.log.repository.get(fund_year_id(2024))
    assert year.figures == (12345678912, 11000000000)

    zh = [[2024, "123456789.12", "110000000.00", "德医保〔2024〕1号"]]
    head = app.log.head()
    assert run(app, "fund_years", table(tmp_path / "g.xlsx", "fund_years", zh, chinese=True))
    assert new_topics(app, head) == [COMPLETED]

    later = [[2024, "130000000", None, "德医保〔2024〕9号"], [2025, "140000000.5", None, "x"]]
    head = app.log.head()
    assert run(app, "fund_years", table(tmp_path / "h.csv", "fund_years", later)).inserted == 2
    reported = get_topic(FundYear.Reported)
    assert new_topics(app, head).count(reported) == 2
    assert app.log.repository.get(fund_year_id(2024)).figures == (13000000000, 11000000000)
    assert app.log.repository.get(fund_year_id(2025)).figures == (14000000050, None)

    bad = [[2024, "-1", None, "x"], [2026, "1.001", "abc", "x"], [1800, "1", None, None]]
    with pytest.raises(ProblemsFound) as caught:
        run(app, "fund_years", table(tmp_path / "bad.csv", "fund_years", bad))
    assert cells(caught.value.problems) == {
        (2, "revenue"),
        (3, "revenue"),
        (3, "prior_spending"),
        (4, "year"),
        (4, "reference"),
    }


def test_community_scores_are_recorded_and_superseded(app: Dangliang, tmp_path: Path) -> None:
    rows = [["YGT01", 2024, "92.5", "县医保局 2024 年度医共体考核"], ["YGT02", 2024, "88", "同上"]]
    assert run(app, "community_scores", table(tmp_path / "s.csv", "community_scores", rows))
    scored: CommunityYear = app.log.repository.get(community_year_id("YGT01", 2024))
    assert scored.score == Decimal("92.5")

    head = app.log.head()
    zh = table(tmp_path / "医共体考核.xlsx", "community_scores", rows, chinese=True)
    assert (run(app, "community_scores", zh).inserted, new_topics(app, head)) == (0, [COMPLETED])

    later = [["YGT01", 2024, "95", "复核"]]
    head = app.log.head()
    run(app, "community_scores", table(tmp_path / "t.csv", "community_scores", later))
    assert new_topics(app, head) == [get_topic(CommunityYear.AssessmentScored), COMPLETED]
    assert app.log.repository.get(community_year_id("YGT01", 2024)).score == Decimal(95)

    bad = [["YGT09", 2024, "90", "x"], ["YGT02", 2024, "100.5", "x"], ["YGT02", 2025, "1.234", "x"]]
    with pytest.raises(ProblemsFound) as caught:
        run(app, "community_scores", table(tmp_path / "bad.csv", "community_scores", bad))
    problems = caught.value.problems
    assert cells(problems) == {(2, "community_code"), (3, "score"), (4, "score")}
    assert "between 0 and 100" in the_problem(problems, 3, "score").message_en
