"""Importing the insurance fund's claims and per-person enrolment (the bulk import) and their
corrections, on SQLite and on PostgreSQL, through `Dangliang.import_insurance` only.

The small facts (communities, monthly counts, fund years, scores) are in
`test_insurance_facts_import.py`; the helpers in `insurance_files.py`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from dangliang.application import Dangliang
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.ids import claim_id, enrolment_id
from dangliang.domain.imports import DataImport
from dangliang.domain.problems import ProblemsFound
from tests.conftest import PrepareApp, load_reference, sqlite_only
from tests.integration.insurance_files import (
    ACTOR,
    TODAY,
    cells,
    register_communities,
    the_problem,
    write_table,
)

SETTLED = get_topic(Claim.Settled)
COMPLETED = get_topic(DataImport.Completed)
CLAIM_COLUMNS = (
    "claim_id",
    "insured_ref",
    "community_code",
    "institution_code",
    "out_of_area",
    "settled_on",
    "fund_amount",
)
CLAIMS = [  # as text, the way a CSV holds them: odd spellings on purpose
    ["JS0001", "P0001", "YGT01", "C01", "否", "2024-01-05", "123.45"],
    ["JS0002", "P0002", "YGT01", "H001", None, "2024/1/6", "1200"],
    ["JS0003", "P0003", "YGT02", "H33052100123", "是", "20240107", "0.01"],
    ["JS0004", "P0001", "YGT02", "C07", "yes", "2024-02-29", "88.5"],
    ['JS-5/"x"', 'P ,"q" 患者', "YGT01", "C02V01", "0", "2024-12-31", "0"],
    ["JS0006", "P0006", "YGT02", "OUT-999", "1", "2025-01-31", "99999.99"],
]
EXPECTED_CLAIMS = {  # claim id → (community, institution, out of area, settled on, fen)
    "JS0001": ("YGT01", "C01", False, date(2024, 1, 5), 12345),
    "JS0002": ("YGT01", "H001", False, date(2024, 1, 6), 120000),
    "JS0003": ("YGT02", "H33052100123", True, date(2024, 1, 7), 1),
    "JS0004": ("YGT02", "C07", True, date(2024, 2, 29), 8850),
    'JS-5/"x"': ("YGT01", "C02V01", False, date(2024, 12, 31), 0),
    "JS0006": ("YGT02", "OUT-999", True, date(2025, 1, 31), 9999999),
}
# The same claims as a spreadsheet or a JSON export holds them: real dates, numbers, booleans.
TYPED_CLAIMS = [
    ["JS0001", "P0001", "YGT01", "C01", False, date(2024, 1, 5), 123.45],
    ["JS0002", "P0002", "YGT01", "H001", None, date(2024, 1, 6), 1200],
    ["JS0003", "P0003", "YGT02", "H33052100123", True, date(2024, 1, 7), 0.01],
    ["JS0004", "P0001", "YGT02", "C07", True, date(2024, 2, 29), 88.5],
    ['JS-5/"x"', 'P ,"q" 患者', "YGT01", "C02V01", False, date(2024, 12, 31), 0],
    ["JS0006", "P0006", "YGT02", "OUT-999", True, date(2025, 1, 31), 99999.99],
]
ENROLMENT_COLUMNS = (
    "insured_ref",
    "insurance_type",
    "birth_date",
    "home",
    "community_code",
    "from_month",
    "to_month",
)
ENROLMENT = [
    ["P0001", "employee", "1960-05-20", "武康街道", "YGT01", "2024-01", None],
    ["P0002", "resident", "2010-12-31", "新市镇", "YGT01", "2024-01", "2024-06"],
    ["P0003", "resident", "2024-03-15", "洛舍镇", "YGT02", "2024-03", None],  # born that month
    ["P0002", "resident", "2010-12-31", "新市镇", "YGT02", "2024-07", None],  # moved
]
ENROLMENT_ZH = [  # the same, as a Chinese spreadsheet: Chinese words, other month spellings
    ["P0001", "职工医保", date(1960, 5, 20), "武康街道", "YGT01", "2024年1月", None],
    ["P0002", "城乡居民医保", date(2010, 12, 31), "新市镇", "YGT01", "2024/1", "202406"],
    ["P0003", "城乡居民医保", date(2024, 3, 15), "洛舍镇", "YGT02", date(2024, 3, 1), None],
    ["P0002", "城乡居民医保", "2010/12/31", "新市镇", "YGT02", "2024-7", None],
]
EXPECTED_ENROLMENT = {  # (insured, from) → (type, birth date, home, community, to)
    ("P0001", "2024-01"): ("employee", date(1960, 5, 20), "武康街道", "YGT01", None),
    ("P0002", "2024-01"): ("resident", date(2010, 12, 31), "新市镇", "YGT01", "2024-06"),
    ("P0003", "2024-03"): ("resident", date(2024, 3, 15), "洛舍镇", "YGT02", None),
    ("P0002", "2024-07"): ("resident", date(2010, 12, 31), "新市镇", "YGT02", None),
}
CORRECTION_COLUMNS = ("claim_id", "action", *CLAIM_COLUMNS[2:], "reason")


@pytest.fixture
def app(prepared_app: PrepareApp, county: GeneratedCounty, tmp_path_factory: Any) -> Dangliang:
    """The county's reference data and its two medical communities."""
    folder = tmp_path_factory.mktemp("communities")

    def prepare(a: Dangliang) -> None:
        load_reference(a, county)
        register_communities(a, folder)

    return prepared_app("insurance", prepare)


def run(app: Dangliang, kind: str, path: Path, **options: Any) -> Any:
    return app.import_insurance(kind, path, actor=ACTOR, today=TODAY, **options)


def counts(result: Any) -> tuple[int, int, int, int]:
    return result.rows, result.inserted, result.already_present, result.rejected


def new_topics(app: Dangliang, after: int) -> list[str]:
    return [n.topic for n in app.log.app_recorder.select_notifications(start=after + 1, limit=99)]


def claims_file(path: Path, rows: list[list[Any]] = CLAIMS, **options: Any) -> Path:
    return write_table(path, "claims", CLAIM_COLUMNS, rows, **options)


# ---- claims -----------------------------------------------------------------------------


def test_claims_in_every_file_type_and_header_language_are_the_same_claims(
    app: Dangliang, tmp_path: Path
) -> None:
    head = app.log.head()
    result = run(app, "claims", claims_file(tmp_path / "claims.csv"))
    assert counts(result) == (6, 6, 0, 0)
    assert new_topics(app, head) == [SETTLED] * 6 + [COMPLETED]
    audit: Any = app.log.mapper.to_domain_event(
        app.log.app_recorder.select_notifications(start=app.log.head(), limit=1)[0]
    )
    assert (audit.kind, audit.file_name, audit.inserted, audit.actor) == (
        "claims",
        "claims.csv",
        6,
        ACTOR,
    )
    for row in CLAIMS:
        claim: Claim = app.log.repository.get(claim_id(row[0]))
        assert (claim.claim_id, claim.insured_ref, claim.version) == (row[0], row[1], 1)
        assert claim.values == EXPECTED_CLAIMS[row[0]]
        # stored byte for byte as the library stores the aggregate's own event
        [stored] = app.log.app_recorder.select_events(claim_id(row[0]))
        event: Any = app.log.mapper.to_domain_event(stored)
        assert event.import_ref == result.import_ref
        own = Claim.settle(
            claim_id=row[0],
            insured_ref=row[1],
            community_code=claim.values[0],
            institution_code=claim.values[1],
            out_of_area=claim.values[2],
            settled_on=claim.values[3],
            fund_fen=claim.values[4],
            actor=ACTOR,
            import_ref=result.import_ref,
        )
        [expected] = own.collect_events()
        object.__setattr__(expected, "timestamp", event.timestamp)
        assert bytes(stored.state) == app.log.mapper.to_stored_event(expected).state

    # the same claims under Chinese headers (GB18030, as Chinese Excel saves a CSV), in a
    # workbook and as JSON lines: every claim is found already present with the same content
    others = [
        claims_file(tmp_path / "claims_zh.csv", chinese=True, encoding="gb18030"),
        claims_file(tmp_path / "claims.xlsx", TYPED_CLAIMS, chinese=True),
        claims_file(tmp_path / "claims_en.xlsx", TYPED_CLAIMS),
        claims_file(tmp_path / "claims.jsonl", TYPED_CLAIMS),
        claims_file(tmp_path / "claims_zh.jsonl", TYPED_CLAIMS, chinese=True),
        tmp_path / "claims.csv",  # and the first file again
    ]
    for path in others:
        head = app.log.head()
        again = run(app, "claims", path)
        assert counts(again) == (6, 0, 6, 0), path.name
        assert new_topics(app, head) == [COMPLETED], path.name


@sqlite_only  # the file's checks; claims appended on both: the test above
def test_a_bad_claims_file_is_refused_whole_with_every_problem(
    app: Dangliang, tmp_path: Path
) -> None:
    good = CLAIMS[0]
    rows = [
        good,  # 2
        ["N3", "P1", "YGT99", "C01", None, "2024-01-05", "1"],  # 3 unknown community
        ["N4", "P1", "YGT01", "C01", None, "2025-02-01", "1"],  # 4 settled in the future
        ["N5", "P1", "YGT01", "C01", None, "2024-02-30", "1"],  # 5 no such day
        ["N6", "P1", "YGT01", "C01", None, "2024-01-05", "-5"],  # 6 negative
        ["N7", "P1", "YGT01", "C01", None, "2024-01-05", "1.234"],  # 7 three places
        ["N8", "P1", "YGT01", "C01", "maybe", "2024-01-05", "1"],  # 8 not yes/no
        [None, "P1", "YGT01", "C01", None, "2024-01-05", "1"],  # 9 no claim id
        good,  # 10 the claim of row 2 again
        ["N11", "P1", "YGT/01", "C01", None, "2024-01-05", "1"],  # 11 not a code
        ["N12", "P1", "YGT01", "C01", None, "2024-01-05", "12,5"],  # 12 not a number
    ]
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        run(app, "claims", claims_file(tmp_path / "bad.csv", rows))
    problems = caught.value.problems
    assert cells(problems) == {
        (3, "community_code"),
        (4, "settled_on"),
        (5, "settled_on"),
        (6, "fund_amount"),
        (7, "fund_amount"),
        (8, "out_of_area"),
        (9, "claim_id"),
        (10, "claim_id"),
        (11, "community_code"),
        (12, "fund_amount"),
    }
    assert all(p.file.endswith("bad.csv") for p in problems)
    assert "unknown medical community" in the_problem(problems, 3, "community_code").message_en
    assert "未登记的医共体" in the_problem(problems, 3, "community_code").message_zh
    assert "future" in the_problem(problems, 4, "settled_on").message_en
    assert "not a valid date" in the_problem(problems, 5, "settled_on").message_en
    assert "must not be negative" in the_problem(problems, 6, "fund_amount").message_en
    assert "2 decimal places" in the_problem(problems, 7, "fund_amount").message_en
    assert "yes/no" in the_problem(problems, 8, "out_of_area").message_en
    assert "required" in the_problem(problems, 9, "claim_id").message_en
    duplicate = the_problem(problems, 10, "claim_id")
    assert "row 2" in duplicate.message_en and "第 2 行" in duplicate.message_zh
    assert "not a valid number" in the_problem(problems, 12, "fund_amount").message_en
    assert app.log.head() == head


def test_the_same_claim_id_with_other_content_is_refused(app: Dangliang, tmp_path: Path) -> None:
    run(app, "claims", claims_file(tmp_path / "claims.csv"))
    changed = [*CLAIMS[:3], [*CLAIMS[3][:6], "88.6"], ["JS0100", *CLAIMS[0][1:]]]
    path = claims_file(tmp_path / "changed.csv", changed)
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        run(app, "claims", path)
    [problem] = caught.value.problems
    assert (problem.row, problem.column) == (5, "claim_id")
    assert "different content" in problem.message_en and "corrections" in problem.message_en
    assert "更正文件" in problem.message_zh
    assert app.log.head() == head

    # skipping bad rows: the new claim goes in, the changed one to the rejects file
    result = run(app, "claims", path, skip_bad_rows=True)
    assert counts(result) == (5, 1, 3, 1)
    assert result.rejects_file is not None and result.rejects_file.exists()
    rejects = result.rejects_file.read_text("utf-8-sig")
    assert "JS0004" in rejects and "88.6" in rejects and "different content" in rejects
    assert app.log.repository.get(claim_id("JS0004")).values[4] == 8850
    assert app.log.repository.get(claim_id("JS0100")).values[4] == 12345


# ---- enrolment --------------------------------------------------------------------------


def test_enrolment_with_english_and_chinese_headers(app: Dangliang, tmp_path: Path) -> None:
    path = write_table(tmp_path / "enrolment.csv", "enrolment", ENROLMENT_COLUMNS, ENROLMENT)
    result = run(app, "enrolment", path)
    assert counts(result) == (4, 4, 0, 0)
    for (insured, start), values in EXPECTED_ENROLMENT.items():
        enrolment: Enrolment = app.log.repository.get(enrolment_id(insured, start))
        assert (enrolment.insured_ref, enrolment.from_month) == (insured, start)
        assert enrolment.values == values
    # the same people in a Chinese workbook: nothing new; the CSV again: nothing new
    zh = write_table(
        tmp_path / "参保人员.xlsx", "enrolment", ENROLMENT_COLUMNS, ENROLMENT_ZH, chinese=True
    )
    for again in (zh, path):
        head = app.log.head()
        assert counts(run(app, "enrolment", again)) == (4, 0, 4, 0)
        assert new_topics(app, head) == [COMPLETED]


@sqlite_only  # the file's checks; enrolment appended on both: the test above
def test_a_bad_enrolment_file_reports_every_problem(app: Dangliang, tmp_path: Path) -> None:
    rows = [
        ENROLMENT[0],  # 2
        ["N3", "resident", "2025-02-01", "新市镇", "YGT01", "2024-01", None],  # 3 born later
        ["N4", "resident", "2024-04-01", "新市镇", "YGT01", "2024-03", None],  # 4 after start
        ["N5", "resident", "2000-01-01", "新市镇", "YGT01", "2024-03", "2024-02"],  # 5 ends first
        ["N6", "resident", "2000-01-01", "新市镇", "YGT77", "2024-03", None],  # 6 community
        ["N7", "商业保险", "2000-01-01", "新市镇", "YGT01", "2024-03", None],  # 7 type
        ["N8", "resident", "2000-01-01", "新市镇", "YGT01", "2024-13", None],  # 8 month
        [*ENROLMENT[0][:3], "德清", *ENROLMENT[0][4:]],  # 9 the key of row 2 again
    ]
    path = write_table(tmp_path / "bad.csv", "enrolment", ENROLMENT_COLUMNS, rows)
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        run(app, "enrolment", path, skip_bad_rows=False)
    problems = caught.value.problems
    assert cells(problems) == {
        (3, "birth_date"),
        (4, "birth_date"),
        (5, "to_month"),
        (6, "community_code"),
        (7, "insurance_type"),
        (8, "from_month"),
        (9, "insured_ref"),
    }
    assert "future" in the_problem(problems, 3, "birth_date").message_en
    assert "after the enrolment starts" in the_problem(problems, 4, "birth_date").message_en
    assert "before from_month" in the_problem(problems, 5, "to_month").message_en
    assert "unknown insurance type" in the_problem(problems, 7, "insurance_type").message_en
    assert "row 2" in the_problem(problems, 9, "insured_ref").message_en
    assert app.log.head() == head


# ---- corrections ------------------------------------------------------------------------


def test_claim_corrections_supersede_and_void_and_a_voided_claim_stays_voided(
    app: Dangliang, tmp_path: Path
) -> None:
    run(app, "claims", claims_file(tmp_path / "claims.csv"))
    fixes = [
        ["JS0001", "correct", None, None, None, None, "100.00", "金额录入错误"],
        ["JS0002", "correct", "YGT02", "H002", "yes", "2024-01-08", None, "结算机构更正"],
        ["JS0003", "void", None, None, None, None, None, "重复结算"],
    ]
    path = write_table(tmp_path / "fixes.csv", "claim_corrections", CORRECTION_COLUMNS, fixes)
    head = app.log.head()
    result = run(app, "claim_corrections", path)
    assert counts(result)[:3] == (3, 3, 0)
    assert result.counts == {"corrected": 2, "voided": 1}
    assert len(new_topics(app, head)) == 3 + 1
    one: Claim = app.log.repository.get(claim_id("JS0001"))
    assert one.values == ("YGT01", "C01", False, date(2024, 1, 5), 10000)
    assert (one.version, one.voided) == (2, False)
    two: Claim = app.log.repository.get(claim_id("JS0002"))
    assert two.values == ("YGT02", "H002", True, date(2024, 1, 8), 120000)
    three: Claim = app.log.repository.get(claim_id("JS0003"))
    assert three.voided and three.values == EXPECTED_CLAIMS["JS0003"]
    corrected: Any = list(app.log.events.get(claim_id("JS0001")))[-1]
    assert (corrected.reason, corrected.actor, corrected.import_ref) == (
        "金额录入错误",
        ACTOR,
        result.import_ref,
    )

    # the same file again changes nothing
    head = app.log.head()
    assert counts(run(app, "claim_corrections", path))[:3] == (3, 0, 3)
    assert new_topics(app, head) == [COMPLETED]

    # a file with problems: every one reported, nothing saved (not even its good row)
    bad = [
        ["JS0003", "更正", None, None, None, None, "5", "再次更正"],  # 2 voided
        ["JS9999", "作废", None, None, None, None, None, "无此记录"],  # 3 unknown claim
        ["JS0001", "更正", None, None, None, None, "100", "同上"],  # 4 nothing changes
        ["JS0004", "作废", None, None, None, None, "1", "作废"],  # 5 a void with a value
        ["JS0006", "作废", None, None, None, None, None, "重复结算"],  # 6 fine on its own
        ["JS0002", "更正", None, None, None, "2025-03-01", None, "日期"],  # 7 future
        ["JS0001", "更正", None, None, None, None, "1", "又一次"],  # 8 row 4's claim again
        ['JS-5/"x"', "作废", None, None, None, None, None, None],  # 9 no reason
    ]
    path = write_table(
        tmp_path / "结算记录更正.csv", "claim_corrections", CORRECTION_COLUMNS, bad, chinese=True
    )
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        run(app, "claim_corrections", path)
    problems = caught.value.problems
    assert cells(problems) == {
        (2, "action"),
        (3, "claim_id"),
        (4, "action"),
        (5, "fund_amount"),
        (7, "settled_on"),
        (8, "claim_id"),
        (9, "reason"),
    }
    assert "voided" in the_problem(problems, 2, "action").message_en
    assert "no such claim" in the_problem(problems, 3, "claim_id").message_en
    assert "nothing changes" in the_problem(problems, 4, "action").message_en
    assert "row 4" in the_problem(problems, 8, "claim_id").message_en
    assert app.log.head() == head
    assert not app.log.repository.get(claim_id("JS0006")).voided


def test_an_enrolment_correction_ends_an_enrolment_and_a_void_takes_one_out(
    app: Dangliang, tmp_path: Path
) -> None:
    run(
        app, "enrolment", write_table(tmp_path / "e.csv", "enrolment", ENROLMENT_COLUMNS, ENROLMENT)
    )
    columns = ("insured_ref", "from_month", "action", *ENROLMENT_COLUMNS[1:5], "to_month", "reason")
    fixes = [
        ["P0001", "2024-01", "correct", None, None, None, None, "2024-09", "参保终止"],
        ["P0003", "2024/3", "void", None, None, None, None, None, "重复登记"],
    ]
    result = run(
        app,
        "enrolment_corrections",
        write_table(tmp_path / "f.csv", "enrolment_corrections", columns, fixes),
    )
    assert result.counts == {"corrected": 1, "voided": 1}
    ended: Enrolment = app.log.repository.get(enrolment_id("P0001", "2024-01"))
    assert ended.values == ("employee", date(1960, 5, 20), "武康街道", "YGT01", "2024-09")
    assert app.log.repository.get(enrolment_id("P0003", "2024-03")).voided

    zh = [
        ["P0002", "2024年7月", "更正", "职工医保", None, None, None, None, "险种变更"],
        ["P0002", "2024-01", "更正", None, "2024-02-01", None, None, "2023-12", "错误"],
        ["P0001", "2024-01", "更正", None, None, None, "YGT09", None, "错误"],
    ]
    path = write_table(tmp_path / "g.xlsx", "enrolment_corrections", columns, zh, chinese=True)
    with pytest.raises(ProblemsFound) as caught:
        run(app, "enrolment_corrections", path)
    assert cells(caught.value.problems) == {
        (3, "birth_date"),
        (3, "to_month"),
        (4, "community_code"),
    }
    path = write_table(tmp_path / "h.xlsx", "enrolment_corrections", columns, zh[:1], chinese=True)
    assert run(app, "enrolment_corrections", path).counts == {"corrected": 1, "voided": 0}
    changed: Enrolment = app.log.repository.get(enrolment_id("P0002", "2024-07"))
    assert changed.values == ("employee", date(2010, 12, 31), "新市镇", "YGT02", None)
