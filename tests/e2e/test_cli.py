"""End to end: the `dangliang` command line on SQLite and PostgreSQL (in-process through
click's runner, see tests/e2e/cli.py; the usage-error test runs the installed console script).

Each test gets a fresh database from the `db_url` fixture. Where a test only needs the
reference data (institutions, staff, catalogue) in place, it loads it in-process through the
public `Dangliang` methods to keep the run short; everything under test goes through the CLI.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from dangliang.application import Dangliang, bootstrap
from dangliang.domain import ids
from dangliang.settings import Settings
from tests.conftest import Prepare, sqlite_only
from tests.e2e.cli import SUBPROCESS, dangliang
from tests.e2e.conftest import Demo, on_postgres, on_sqlite
from tests.e2e.test_equivalents_cli import run

ACTOR = "e2e-tester"
SERVICES_HEADER = [
    "source_id",
    "institution_code",
    "staff_id",
    "item_code",
    "quantity",
    "service_date",
    "patient_ref",
    "compliant",
]
ZH_HEADER = [
    "来源编号",
    "机构编码",
    "人员编号",
    "项目编码",
    "数量",
    "服务日期",
    "患者标识",
    "是否达标",
]
REFERENCE = ("institutions", "headcount", "staff", "catalogue")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def dl(
    *args: str,
    db: str | None = None,
    cwd: Path,
    env: dict[str, str] | None = None,
    console_script: bool = SUBPROCESS,
) -> Run:
    """`dangliang [--db DB] ARGS` in `cwd` as ACTOR, without DANGLIANG_DB unless `env` sets it."""
    changes: dict[str, str | None] = {"DANGLIANG_DB": None, "DANGLIANG_ACTOR": ACTOR, **(env or {})}
    p = dangliang(
        *(["--db", db] if db else []),
        *args,
        env=changes,
        cwd=cwd,
        timeout=120,
        console_script=console_script,
    )
    return Run(p.returncode, p.stdout, p.stderr)


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}\nstdout:\n{run.out}\nstderr:\n{run.err}"
    return run


def head_in_process(db_url: str) -> int:
    """The log head read directly (cheaper than a `dangliang status` subprocess)."""
    app = bootstrap(Settings(db_url))
    try:
        return app.log.head()
    finally:
        app.close()


def log_head(db: str, cwd: Path) -> int:
    run = ok(dl("status", db=db, cwd=cwd))
    m = re.search(r"log head: (\d+)", run.out)
    assert m, run.out
    return int(m.group(1))


@dataclass
class County:
    dir: Path
    generate_output: str
    xlsx_dir: Path

    def file(self, kind: str) -> Path:
        return self.dir / f"{kind}.csv"

    def services(self) -> list[dict[str, str]]:
        with self.file("services").open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> County:
    """`dangliang generate` run once for the module (it needs no database)."""
    root = tmp_path_factory.mktemp("e2e")
    gen = ok(dl("generate", "--out", "county", "--records", "2000", "--seed", "3", cwd=root))
    xlsx = ok(
        dl(
            "generate",
            "--out",
            "county_xlsx",
            "--records",
            "200",
            "--seed",
            "3",
            "--format",
            "xlsx",
            cwd=root,
        )
    )
    assert "services.xlsx" in xlsx.out
    return County(root / "county", gen.out, root / "county_xlsx")


def load_reference_in_process(db_url: str, county: County) -> None:
    app = bootstrap(Settings(db_url))
    try:
        load_cli_reference(app, county)
    finally:
        app.close()


def load_cli_reference(app: Dangliang, county: County) -> None:
    app.load_institutions(county.file("institutions"), actor=ACTOR)
    app.load_headcount(county.file("headcount"), actor=ACTOR)
    app.load_staff(county.file("staff"), actor=ACTOR)
    app.load_catalogue(county.file("catalogue"), actor=ACTOR)


@pytest.fixture
def reference_db(prepared_url: Prepare, county: County) -> str:
    """A copy of a database holding this module's county's reference data (prepared once)."""
    return prepared_url("e2e-cli-reference", lambda a: load_cli_reference(a, county))


# ------------------------------------------------------------------------------ generate


def test_generate_writes_the_county_files(county: County) -> None:
    for kind in (*REFERENCE, "services"):
        assert county.file(kind).is_file()
        assert f"  {kind:<13} " in county.generate_output
    assert "591 staff, 60 items, 2000 service records" in county.generate_output
    assert len(county.services()) == 2000
    assert (county.xlsx_dir / "services.xlsx").is_file()


def test_generate_summary_counts_centres(county: County) -> None:
    assert "12 centres, 127 village clinics" in county.generate_output


# ---------------------------------------------------------------------------- happy path


def test_generate_load_import_status(db_url: str, county: County) -> None:
    cwd = county.dir.parent
    d = county.dir.name
    runs = {
        "institutions": ok(dl("institutions", "load", f"{d}/institutions.csv", db=db_url, cwd=cwd)),
        "headcount": ok(dl("institutions", "headcount", f"{d}/headcount.csv", db=db_url, cwd=cwd)),
        "staff": ok(dl("staff", "load", f"{d}/staff.csv", db=db_url, cwd=cwd)),
        "catalogue": ok(dl("catalog", "load", f"{d}/catalogue.csv", db=db_url, cwd=cwd)),
    }
    assert "139 rows, 139 changed" in runs["institutions"].out
    assert "591 rows, 591 changed" in runs["staff"].out

    first = ok(dl("import", f"{d}/services.csv", db=db_url, cwd=cwd))
    assert f"{d}/services.csv: 共 2000 行，新增 2000，已存在 0，拒收 0" in first.out
    assert "2000 rows, 2000 new, 0 already present, 0 rejected" in first.out

    status = ok(dl("status", db=db_url, cwd=cwd)).out
    assert re.search(r"^  institutions\s+139$", status, re.M), status
    assert re.search(r"^  staff\s+591$", status, re.M), status
    assert re.search(r"^  catalogue_items\s+60$", status, re.M), status
    assert re.search(r"projection registry\s+\d+ \(up to date\)", status), status
    assert "behind" not in status
    expected_db = "SQLite" if db_url.startswith("sqlite") else "PostgreSQL"
    assert f"数据库 / database: {expected_db}" in status
    head = int(re.search(r"log head: (\d+)", status).group(1))  # type: ignore[union-attr]

    second = ok(dl("import", f"{d}/services.csv", db=db_url, cwd=cwd))
    assert "2000 rows, 0 new, 2000 already present, 0 rejected" in second.out
    assert "共 2000 行，新增 0，已存在 2000，拒收 0" in second.out
    # the second import wrote only its audit-trail event (DataImport), no service record
    assert head_in_process(db_url) == head + 1

    # DANGLIANG_ACTOR is who recorded the facts
    row = county.services()[0]
    app = bootstrap(Settings(db_url))
    try:
        events: list[Any] = list(
            app.log.events.get(ids.service_record_id(row["institution_code"], row["source_id"]))
        )
    finally:
        app.close()
    assert len(events) == 1
    assert events[0].actor == ACTOR
    assert events[0].staff_id == row["staff_id"]


# ------------------------------------------------------------------------------ bad rows


def good_cells(county: County) -> dict[str, str]:
    """Institution, staff and item that make a valid row on 2024-03-04."""
    staff = next(
        r
        for r in csv.DictReader(county.file("staff").open(encoding="utf-8"))
        if not r["to_date"] and r["from_date"] <= "2024-01-01"
    )
    item = next(
        r
        for r in csv.DictReader(county.file("catalogue").open(encoding="utf-8"))
        if r["effective_from"] == "2024-01-01"
    )
    return {
        "institution_code": staff["institution_code"],
        "staff_id": staff["staff_id"],
        "item_code": item["item_code"],
    }


def bad_rows(county: County) -> list[list[str]]:
    c = good_cells(county)
    inst, staff, item = c["institution_code"], c["staff_id"], c["item_code"]
    return [
        ["G1", inst, staff, item, "1", "2024-03-04", "P1", ""],  # 2 good
        ["B2", "NOPE", staff, item, "1", "2024-03-04", "", ""],  # 3 unknown institution
        ["B3", inst, staff, "XX999", "1", "2024-03-04", "", ""],  # 4 unknown item
        ["B4", inst, staff, item, "1", "2999-01-01", "", ""],  # 5 future date
        ["G5", inst, staff, item, "1.50", "2024-03-05", "", "是"],  # 6 good
        ["B5", inst, staff, item, "1", "2024-02-30", "", ""],  # 7 bad date
        ["B6", inst, staff, item, "-2", "2024-03-04", "", ""],  # 8 negative quantity
        ["B7", inst, "", item, "1", "2024-03-04", "", ""],  # 9 missing staff id
        ["G1", inst, staff, item, "1", "2024-03-04", "P1", ""],  # 10 duplicate of row 2
        ["B8", inst, staff, item, "abc", "2024-03-04", "", "maybe"],  # 11 two bad cells
        ["B9", inst, "S99999", item, "1", "2024-03-04", "", ""],  # 12 unknown staff
        ["G6", inst, staff, item, "2", "2024-03-06", "", "否"],  # 13 good
    ]


EXPECTED_REPORT = [
    "bad.csv:3:institution_code: 未知机构编码：'NOPE' / unknown institution code 'NOPE'",
    "bad.csv:4:item_code: 未知项目编码：'XX999' / unknown item code 'XX999'",
    "bad.csv:5:service_date: 服务日期在未来：2999-01-01 / "
    "service date is in the future: 2999-01-01",
    "bad.csv:7:service_date: 日期无效，应为 YYYY-MM-DD：'2024-02-30' / "
    "not a valid date, expected YYYY-MM-DD: '2024-02-30'",
    "bad.csv:8:quantity: 必须大于 0：'-2' / must be greater than 0: '-2'",
    "bad.csv:9:staff_id: 必填 / required",
    "bad.csv:10:source_id: 文件内来源编号重复（与第 2 行相同） / "
    "duplicate source id within the file (same as row 2)",
    "bad.csv:11:compliant: 应为 是/否（true/false）：'maybe' / not a yes/no value: 'maybe'",
    "bad.csv:11:quantity: 不是有效的数字：'abc' / not a valid number: 'abc'",
    "bad.csv:12:staff_id: 未知人员编号：'S99999' / unknown staff id 'S99999'",
]
REFUSED_LINE = "已拒收：共 10 个问题，未写入任何数据 / refused: 10 problem(s); nothing was written"


def write_csv(
    path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8"
) -> Path:
    lines = [",".join(header), *(",".join(r) for r in rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def test_bad_file_is_refused_with_every_problem_then_skip_bad_rows(
    reference_db: str, county: County, tmp_path: Path
) -> None:
    db_url = reference_db
    rows = bad_rows(county)
    write_csv(tmp_path / "bad.csv", SERVICES_HEADER, rows)
    head = head_in_process(db_url)

    refused = dl("import", "bad.csv", db=db_url, cwd=tmp_path)
    assert refused.code == 1, refused.err
    assert refused.err_lines == [*EXPECTED_REPORT, REFUSED_LINE]
    assert refused.out == ""
    assert log_head(db_url, tmp_path) == head  # nothing was written, not even an audit event
    assert not (tmp_path / "bad.csv.rejects.csv").exists()

    skipped = ok(dl("import", "--skip-bad-rows", "bad.csv", db=db_url, cwd=tmp_path))
    assert (
        "bad.csv: 共 12 行，新增 3，已存在 0，拒收 9 / 12 rows, 3 new, 0 already present, "
        "9 rejected (rejects: bad.csv.rejects.csv)" in skipped.out
    )
    assert sorted(skipped.err_lines) == sorted(EXPECTED_REPORT)
    # three service records, the import's start and its one batch, and one DataImport event
    assert head_in_process(db_url) == head + 2 + 3 + 1

    rejects_path = tmp_path / "bad.csv.rejects.csv"
    raw = rejects_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM so Excel opens it
    rejects = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rejects[0] == ["row", *SERVICES_HEADER, "reason"]
    by_row = {int(r[0]): r for r in rejects[1:]}
    assert sorted(by_row) == [3, 4, 5, 7, 8, 9, 10, 11, 12]
    expected_reasons: dict[int, set[str]] = {}
    for line in EXPECTED_REPORT:
        _, row_text, rest = line.split(":", 2)
        expected_reasons.setdefault(int(row_text), set()).add(rest)
    for number, r in by_row.items():
        assert set(r[-1].split("; ")) == expected_reasons[number], (number, r[-1])
        if number != 10:  # row 10 is covered by test_rejects_keep_the_original_cells
            original = rows[number - 2]
            assert r[1:-1] == original, (number, r)


@pytest.fixture(scope="module")
def skipped_on_sqlite(county: County, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    """One `--skip-bad-rows` import of the bad file on SQLite, for the checks below."""
    tmp = tmp_path_factory.mktemp("skip")
    db = f"sqlite:///{tmp / 'dangliang.db'}"
    load_reference_in_process(db, county)
    write_csv(tmp / "bad.csv", SERVICES_HEADER, bad_rows(county))
    return dl("import", "--skip-bad-rows", "bad.csv", db=db, cwd=tmp), tmp


def test_skip_bad_rows_lists_problems_in_row_order(skipped_on_sqlite: tuple[Run, Path]) -> None:
    run, _ = skipped_on_sqlite
    assert run.code == 0
    assert run.err_lines == EXPECTED_REPORT


def test_rejects_keep_the_original_cells(
    skipped_on_sqlite: tuple[Run, Path], county: County
) -> None:
    _, tmp = skipped_on_sqlite
    text = (tmp / "bad.csv.rejects.csv").read_text(encoding="utf-8-sig")
    by_row = {int(r[0]): r for r in list(csv.reader(text.splitlines()))[1:]}
    assert by_row[10][1:-1] == bad_rows(county)[8]


# -------------------------------------------------------------------------- other formats


@sqlite_only  # the formats' reading; tests/integration/test_import.py imports each on both
def test_gb18030_xlsx_and_json_lines_import(
    reference_db: str, county: County, tmp_path: Path
) -> None:
    db_url = reference_db
    source = county.services()[:20]

    # Chinese Excel: GB18030, Chinese headers, unpadded 2024/1/2 dates, 是/否
    gb_rows = []
    for i, r in enumerate(source, start=1):
        words = {"": "", "true": "是", "false": "否"}
        gb_rows.append(
            [
                f"GB-{i}",
                r["institution_code"],
                r["staff_id"],
                r["item_code"],
                r["quantity"],
                "/".join(str(int(part)) for part in r["service_date"].split("-")),
                r["patient_ref"],
                words[r["compliant"]],
            ]
        )
    gb = write_csv(tmp_path / "国标.csv", ZH_HEADER, gb_rows, encoding="gb18030")
    assert "来源编号".encode("gb18030") in gb.read_bytes()
    run = ok(dl("import", gb.name, db=db_url, cwd=tmp_path))
    assert "20 rows, 20 new, 0 already present, 0 rejected" in run.out

    # XLSX written by the generator
    run = ok(dl("import", str(county.xlsx_dir / "services.xlsx"), db=db_url, cwd=tmp_path))
    assert "200 rows, 200 new, 0 already present, 0 rejected" in run.out

    # JSON lines: numbers as numbers or strings, booleans as JSON booleans. The first three
    # lines repeat GB-1..3 in JSON spelling: the same facts, so they are already present.
    lines = []
    for i, r in enumerate(source, start=1):
        obj: dict[str, object] = {
            "institution_code": r["institution_code"],
            "staff_id": r["staff_id"],
            "item_code": r["item_code"],
            "service_date": r["service_date"],
            "patient_ref": r["patient_ref"],
        }
        if i <= 3:
            obj.update(
                source_id=f"GB-{i}",
                quantity=float(r["quantity"]) if i == 2 else int(r["quantity"]),
                compliant=r["compliant"] != "false",
            )
        else:
            obj.update(source_id=f"JL-{i}", quantity=r["quantity"])
            if r["compliant"]:
                obj["compliant"] = r["compliant"] == "true"
        lines.append(json.dumps(obj, ensure_ascii=False))
    jl = tmp_path / "services.jsonl"
    jl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = ok(dl("import", jl.name, db=db_url, cwd=tmp_path))
    assert "20 rows, 17 new, 3 already present, 0 rejected" in run.out


# ------------------------------------------------------------------------- usage errors


def test_import_usage_errors(db_url: str, tmp_path: Path) -> None:
    no_file = dl("import", db=db_url, cwd=tmp_path)
    assert no_file.code == 2
    assert "Usage: dangliang import [OPTIONS] [FILE]" in no_file.err
    assert "Error: give a FILE of service records, or --corrections FILE" in no_file.err

    missing = dl("import", "missing.csv", db=db_url, cwd=tmp_path)
    assert missing.code == 2
    assert "Usage: dangliang import" in missing.err
    assert "'missing.csv' does not exist" in missing.err
    assert missing.out == ""


def test_unsupported_database_url_is_a_usage_error(tmp_path: Path) -> None:
    message = (
        "Error: unsupported database URL 'ftp://x': "
        "use sqlite:///FILE or postgresql://USER@HOST:PORT/DB"
    )
    # through the installed console script: the exit status of a real process
    flag = dl("status", db="ftp://x", cwd=tmp_path, console_script=True)
    assert flag.code == 2
    assert message in flag.err
    env = dl("status", cwd=tmp_path, env={"DANGLIANG_DB": "ftp://x"}, console_script=True)
    assert env.code == 2
    assert message in env.err
    memory = dl("status", db="sqlite:///:memory:", cwd=tmp_path)
    assert memory.code == 2
    assert "SQLite URL needs a file path" in memory.err
    assert list(tmp_path.iterdir()) == []  # no database file was created


# ------------------------------------------------------------ the demo's insurance fund


def fund_summary(
    text: str,
) -> tuple[dict[str, Decimal], dict[str, dict[str, Decimal]], dict[str, str]]:
    """Step 14 of the demo's output: the fund's printed amounts, each community's, and each
    community's outcome ("surplus" or "overspend"), keyed by the labels' English words."""
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("14. "))
    assert "示例数据" in lines[start]
    fund: dict[str, Decimal] = {}
    communities: dict[str, dict[str, Decimal]] = {}
    outcomes: dict[str, str] = {}
    current = fund
    for line in lines[start + 1 :]:
        if not line.startswith("   "):
            break
        header = re.match(r"^   (\S+) .*: \S+ (surplus|overspend)$", line)
        if header:
            current = communities.setdefault(header[1], {})
            outcomes[header[1]] = header[2]
            continue
        amount = re.match(r"^\s{6,}(.+?)\s+(-?[\d,]+\.\d\d)$", line)
        if amount:
            label = re.sub(r"[^\x00-\x7f]+", " ", amount[1])  # the English words
            label = re.sub(r"\s*\([^)]*\d[^)]*\)", "", label).strip(" ()").split(",")[0]
            current[label] = Decimal(amount[2].replace(",", ""))
    return fund, communities, outcomes


def show_run(run_id: str, db: str) -> dict[str, Any]:
    shown = run("insurance", "show", run_id, "--json", db=db)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


DEQING_LABELS = {  # printed label → the recorded figure
    "budget": "budget",
    "spending": "spending",
    "of which out of area": "spending_out_of_area",
    "surplus": "surplus",
    "retained at once": "retained_direct",
    "retained after assessment": "retained_assessed",
    "returned to the fund": "returned_to_fund",
    "overspend": "overspend",
    "overspend base": "overspend_base",
    "the community's share": "community_bears",
    "the fund's share": "fund_bears",
    "final": "final",
}


@pytest.mark.slow
@on_sqlite  # the demo's De Qing year (tests/e2e/conftest.py)
def test_the_demo_runs_the_insurance_fund_year_under_de_qing(demo: Demo) -> None:
    assert demo.insurance == "deqing"
    assert demo.first.returncode == 0, demo.first.stderr
    text = demo.first.stdout
    assert re.search(r"insurance fund: [\d,]+ insured, [\d,]+ claims of 2023–2024", text)
    assert "deqing_insurance.yaml adopted" in text and "预拨 advances monthly" in text
    # Twelve monthly advances and the year-end settlement, approved by the checker, paid.
    listed = run("insurance", "list", "--json", db=demo.db_url)
    runs = {r["run_id"]: r for r in json.loads(listed.stdout)}
    assert set(runs) == {f"ins-2024-{m:02d}#1" for m in range(1, 13)} | {"ins-2024#1"}
    assert all(r["state"] == "paid" and r["approved_by"] == "e2e-checker" for r in runs.values())
    assert text.count("approved by e2e-checker") == 14 + 13

    # The printed year is the recorded year-end run, to the fen: one community in surplus,
    # the other in overspend, each split adding up.
    recorded = show_run("ins-2024#1", demo.db_url)
    fund, printed, outcomes = fund_summary(text)
    assert sorted(outcomes.values()) == ["overspend", "surplus"]
    assert set(printed) == {row["code"] for row in recorded["communities"]}
    for row in recorded["communities"]:
        lines, figures = printed[row["code"]], row["figures"]
        for label, value in lines.items():
            key = DEQING_LABELS.get(label, label.replace(" ", "_"))
            expected = figures[key] if key in figures else row[key]
            assert value == Decimal(expected), (row["code"], label)
        assert lines["settlement"] == lines["final"] - lines["advances paid"]
        if outcomes[row["code"]] == "surplus":
            assert Decimal(figures["surplus"]) > 0 == Decimal(figures["overspend"])
            assert (
                lines["surplus"]
                == lines["budget"] - lines["spending"]
                == (
                    lines["retained at once"]
                    + lines["retained after assessment"]
                    + lines["returned to the fund"]
                )
            )
        else:
            assert Decimal(figures["overspend"]) > 0 == Decimal(figures["surplus"])
            assert (
                lines["overspend"]
                == lines["spending"] - lines["budget"]
                == (lines["the community's share"] + lines["the fund's share"])
            )
    assert fund == {}  # De Qing's fund figures are one line of text

    # Every fund run's statement, the settlement's among them.
    folder = demo.out_dir / "insurance"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"ins-2024-{m:02d}.xlsx" for m in range(1, 13)] + ["ins-2024.xlsx"]
    )
    sheet = load_workbook(folder / "ins-2024.xlsx").worksheets[0]
    assert any("YGT01" in row for row in sheet.iter_rows(values_only=True))


@pytest.mark.slow
@on_postgres  # the demo's Zhijiang year (tests/e2e/conftest.py)
def test_the_demo_under_zhijiang_withholds_then_allots_the_revenue(demo: Demo) -> None:
    assert demo.insurance == "zhijiang"
    db, out = demo.db_url, demo.first
    assert out.returncode == 0, out.stderr
    assert "zhijiang_insurance.yaml adopted" in out.stdout and "advances quarterly" in out.stdout
    quarters = [f"ins-2024-Q{q}#1" for q in range(1, 5)]
    for run_id in [*quarters, "ins-2024#1"]:
        assert f"{run_id} payable" in out.stdout

    fund, printed, outcomes = fund_summary(out.stdout)
    recorded = show_run("ins-2024#1", db)
    allotments = sum(lines["allotment"] for lines in printed.values())
    withheld = fund["reserve"] + fund["critical illness"] + fund["out of area"]
    assert withheld + allotments + fund.get("unallocated", 0) == fund["revenue"]
    assert fund["to the communities"] == allotments
    for label, key in (
        ("revenue", "revenue"),
        ("reserve", "reserve"),
        ("critical illness", "critical_illness"),
        ("out of area", "out_of_area"),
        ("to the communities", "to_communities"),
    ):
        assert fund[label] == Decimal(recorded["fund"][key]), label
    for row in recorded["communities"]:
        lines, figures = printed[row["code"]], row["figures"]
        assert lines["allotment"] == Decimal(figures["allotment"])
        assert lines["spending in area"] == Decimal(figures["spending_in_area"])
        assert lines["final"] == Decimal(figures["final"])
        assert lines["settlement"] == Decimal(row["settlement"])
        if outcomes[row["code"]] == "surplus":
            parts = lines["county"] + lines["township"] + lines["village"]
            assert parts == lines["surplus"] == lines["allotment"] - lines["spending in area"]
    assert sorted(p.name for p in (demo.out_dir / "insurance").iterdir()) == sorted(
        [f"ins-2024-Q{q}.xlsx" for q in range(1, 5)] + ["ins-2024.xlsx"]
    )
