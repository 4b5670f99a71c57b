"""The synthetic county generator: deterministic, referentially valid, every format readable."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from freezegun import freeze_time
from pydantic import TypeAdapter

from dangliang.demo.county_fund import FUND_FILES
from dangliang.demo.county_inputs import PAY_BENCHMARK
from dangliang.demo.generator import SERVICES_FORMATS, GeneratedCounty, generate
from dangliang.importers import formats
from dangliang.importers.fields import validate_chunk
from dangliang.importers.input_files import (
    ForceMajeureRow,
    IncomeRow,
    PayLevelRow,
    ScoreRow,
    TaskRow,
)
from dangliang.importers.performance_pay_inputs import (
    OutsideItemRow,
    PoolRow,
    StaffCoefficientRow,
)
from dangliang.importers.readers import open_table

YEAR = 2024
RECORDS = 20_000
INPUTS = ("scores", "income", "pay_levels", "tasks", "force_majeure")
PERFORMANCE = ("pools", "staff_coefficients", "outside_items")


def read_csv(path: Path, encoding: str = "utf-8") -> tuple[list[str], list[list[str]]]:
    with path.open(encoding=encoding, newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def read_dicts(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_services(path: Path, services_format: str) -> list[tuple[str, ...]]:
    """Every service row as canonical strings ("" for not given), whatever the format."""
    names = formats.SERVICES.column_names
    if services_format == "jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        objects = [json.loads(line) for line in lines]
        assert all(set(o) <= set(names) for o in objects)
        return [tuple(str(o.get(n, "")) for n in names) for o in objects]
    if services_format == "xlsx":
        workbook = openpyxl.load_workbook(path, read_only=True)
        sheet_rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        workbook.close()
        assert list(sheet_rows[0]) == list(names)
        return [tuple("" if v is None else str(v) for v in row) for row in sheet_rows[1:]]
    encoding = {"csv": "utf-8", "csv-bom": "utf-8-sig", "csv-gb18030": "gb18030"}
    header, rows = read_csv(path, encoding[services_format])
    expected = (
        [c.label_zh for c in formats.SERVICES.columns]
        if services_format == "csv-gb18030"
        else list(names)
    )
    assert header == expected
    return [tuple(row) for row in rows]


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCounty:
    return generate(tmp_path_factory.mktemp("county"), RECORDS, seed=7, year=YEAR)


@pytest.fixture(scope="module")
def services(county: GeneratedCounty) -> list[dict[str, str]]:
    return read_dicts(county.files["services"])


# --- determinism ------------------------------------------------------------------------


@pytest.mark.parametrize("services_format", SERVICES_FORMATS)
def test_same_arguments_write_identical_bytes(tmp_path: Path, services_format: str) -> None:
    first = generate(tmp_path / "a", 3_000, seed=11, services_format=services_format)
    second = generate(tmp_path / "b", 3_000, seed=11, services_format=services_format)
    assert first.files.keys() == second.files.keys()
    for name, path in first.files.items():
        assert path.read_bytes() == second.files[name].read_bytes(), name


def test_a_different_seed_gives_different_services(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 3_000, seed=1)
    second = generate(tmp_path / "b", 3_000, seed=2)
    assert first.files["services"].read_bytes() != second.files["services"].read_bytes()


# --- files and headers ------------------------------------------------------------------


def test_files_have_canonical_headers_in_format_order(county: GeneratedCounty) -> None:
    expected = {
        "institutions": formats.INSTITUTIONS,
        "headcount": formats.HEADCOUNT,
        "staff": formats.STAFF,
        "catalogue": formats.CATALOGUE,
        "services": formats.SERVICES,
        "scores": formats.SCORES,
        "income": formats.INCOME,
        "pay_levels": formats.PAY_LEVELS,
        "tasks": formats.TASKS,
        "force_majeure": formats.FORCE_MAJEURE,
        "pools": formats.POOLS,
        "staff_coefficients": formats.STAFF_COEFFICIENTS,
        "outside_items": formats.OUTSIDE_ITEMS,
    }
    assert set(county.files) == set(expected) | set(FUND_FILES)  # the fund: test_county_fund.py
    for name, fmt in expected.items():
        path = county.files[name]
        assert path.parent == county.out_dir
        assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
        header, _ = read_csv(path)
        assert tuple(header) == fmt.column_names, name
    assert county.files["services"].name == "services.csv"
    assert {name: county.files[name].name for name in INPUTS} == {
        "scores": "assessment_scores.csv",
        "income": "medical_income.csv",
        "pay_levels": "pay_levels.csv",
        "tasks": "directive_tasks.csv",
        "force_majeure": "force_majeure.csv",
    }
    assert {name: county.files[name].name for name in PERFORMANCE} == {
        "pools": "performance_pools.csv",
        "staff_coefficients": "staff_coefficients.csv",
        "outside_items": "outside_items.csv",
    }


# --- reference data ---------------------------------------------------------------------


def test_institutions_form_a_de_qing_sized_county(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["institutions"])
    centres = [r for r in rows if not r["parent_code"]]
    clinics = [r for r in rows if r["parent_code"]]

    assert [c["code"] for c in centres] == [f"C{n:02d}" for n in range(1, 13)]
    assert Counter(c["kind"] for c in centres) == {
        "township_health_centre": 10,
        "community_health_centre": 2,
    }
    assert sum(c["remote"] == "true" for c in centres) == 2
    assert "莫干山镇卫生院" in {c["name"] for c in centres if c["remote"] == "true"}
    assert len(clinics) == 127
    assert all(c["kind"] == "village_clinic" for c in clinics)
    assert all(re.fullmatch(r"C\d\dV\d\d", c["code"]) for c in clinics)
    assert all(c["code"].startswith(c["parent_code"]) for c in clinics)
    assert all(c["name"].endswith("村卫生室") for c in clinics)
    per_centre = Counter(c["parent_code"] for c in clinics)
    assert set(per_centre) == {c["code"] for c in centres}
    assert set(per_centre.values()) <= {10, 11}
    assert len({r["code"] for r in rows}) == len(rows)
    assert all(r["kind"] in formats.INSTITUTION_KINDS for r in rows)
    assert (county.institutions, county.village_clinics) == (139, 127)


def test_headcount_covers_every_centre_for_two_years(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["headcount"])
    assert {(r["institution_code"], r["year"]) for r in rows} == {
        (f"C{n:02d}", str(y)) for n in range(1, 13) for y in (YEAR - 1, YEAR)
    }
    assert len(rows) == 24
    assert all(20 <= int(r["establishment_headcount"]) <= 60 for r in rows)


def test_staff_roster(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["staff"])
    institutions = {r["code"]: r for r in read_dicts(county.files["institutions"])}

    assert 550 <= len(rows) <= 650
    assert county.staff == len(rows)
    assert [r["staff_id"] for r in rows] == [f"S{n:05d}" for n in range(1, len(rows) + 1)]
    for r in rows:
        assert r["post"] in formats.POSTS
        assert r["establishment"] in formats.ESTABLISHMENT
        village = institutions[r["institution_code"]]["kind"] == "village_clinic"
        assert (r["post"] == "village_doctor") == village
        if village:
            assert r["establishment"] == "off"
        assert r["name"] and len(r["name"]) in (2, 3)
        date.fromisoformat(r["from_date"])
        if r["to_date"]:
            assert date.fromisoformat(r["to_date"]) >= date.fromisoformat(r["from_date"])
    doctors = Counter(r["institution_code"] for r in rows if r["post"] == "village_doctor")
    assert len(doctors) == 127
    assert set(doctors.values()) <= {1, 2}
    assert sum(r["establishment"] == "on" for r in rows) > len(rows) // 2
    joiners = [r for r in rows if r["from_date"] >= f"{YEAR}-01-01"]
    leavers = [r for r in rows if r["to_date"]]
    assert 0.02 * len(rows) <= len(joiners) <= 0.04 * len(rows)
    assert 0.02 * len(rows) <= len(leavers) <= 0.04 * len(rows)
    assert all(r["to_date"].startswith(str(YEAR)) for r in leavers)
    assert all(r["from_date"] < f"{YEAR}-01-01" for r in rows if r not in joiners)


def test_catalogue(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["catalogue"])
    codes = {r["item_code"] for r in rows}

    assert 55 <= len(codes) <= 70
    assert county.items == len(codes)
    assert len(rows) == len(codes) + 1
    assert {r["category"] for r in rows} == set(formats.CATEGORIES)
    by_category = Counter(r["category"] for r in rows if r["effective_from"] == f"{YEAR}-01-01")
    assert 30 <= by_category["basic_medical"] <= 40
    assert 20 <= by_category["basic_public_health"] <= 30
    for r in rows:
        assert re.fullmatch(r"(BM|PH)\d{3}", r["item_code"])
        assert r["item_code"].startswith("BM") == (r["category"] == "basic_medical")
        assert re.fullmatch(r"\d+\.\d{4}", r["equivalent_value"]), r
        assert date.fromisoformat(r["effective_from"]).day == 1
        assert r["name"] and r["unit"] and r["reference"]
    later = [r for r in rows if r["effective_from"] != f"{YEAR}-01-01"]
    assert len(later) == 1
    assert later[0]["effective_from"] == f"{YEAR}-07-01"
    assert "Zhuji" in later[0]["reference"]
    first = next(r for r in rows if r["item_code"] == later[0]["item_code"] and r is not later[0])
    assert first["equivalent_value"] != later[0]["equivalent_value"]
    assert all("illustrative" in r["reference"] for r in rows)


# --- compensation inputs ----------------------------------------------------------------

INPUT_ROWS: dict[str, type] = {
    "scores": ScoreRow,
    "income": IncomeRow,
    "pay_levels": PayLevelRow,
    "tasks": TaskRow,
    "force_majeure": ForceMajeureRow,
}


@pytest.mark.parametrize("name", INPUTS)
def test_input_files_pass_their_loaders_validation(county: GeneratedCounty, name: str) -> None:
    """Every input file reads and validates with the loader's own row type; the institution
    codes it names are in institutions.csv."""
    known = {r["code"] for r in read_dicts(county.files["institutions"])}
    fmt = formats.FORMATS[name]
    reader = open_table(county.files[name], fmt)
    rows = list(reader)
    assert reader.problems == []
    assert reader.ignored_columns == []
    good, problems = validate_chunk(TypeAdapter(list[INPUT_ROWS[name]]), name, rows)
    assert problems == []
    assert len(good) == len(rows) > 0
    codes: set[str] = set()
    for _, row in good:
        codes.update([row["institution_code"]] if "institution_code" in row else [])
        codes.update(row.get("institutions") or [])
    assert codes and codes <= known


def test_input_files_are_deterministic_and_seeded(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 10, seed=4)
    second = generate(tmp_path / "b", 10_000, seed=4)  # services do not change the inputs
    other = generate(tmp_path / "c", 10, seed=5)
    for name in INPUTS:
        assert first.files[name].read_bytes() == second.files[name].read_bytes(), name
    assert any(first.files[n].read_bytes() != other.files[n].read_bytes() for n in INPUTS)


# --- performance-pay inputs -------------------------------------------------------------

PERFORMANCE_ROWS: dict[str, type] = {
    "pools": PoolRow,
    "staff_coefficients": StaffCoefficientRow,
    "outside_items": OutsideItemRow,
}


@pytest.mark.parametrize("name", PERFORMANCE)
def test_performance_files_pass_their_loaders_validation(
    county: GeneratedCounty, name: str
) -> None:
    """Every performance-pay file validates with its loader's row type, has no duplicate key,
    and names only known institutions and staff."""
    institutions = {r["code"] for r in read_dicts(county.files["institutions"])}
    staff = {r["staff_id"] for r in read_dicts(county.files["staff"])}
    fmt = formats.FORMATS[name]
    reader = open_table(county.files[name], fmt)
    rows = list(reader)
    assert reader.problems == []
    assert reader.ignored_columns == []
    good, problems = validate_chunk(TypeAdapter(list[PERFORMANCE_ROWS[name]]), name, rows)
    assert problems == []
    assert len(good) == len(rows) > 0
    keys = [tuple(row[k] for k in fmt.key) for _, row in good]
    assert len(set(keys)) == len(keys)
    for _, row in good:
        assert row["year"] == YEAR
        assert row.get("institution_code", "C01") in institutions
        assert row.get("staff_id", "S00001") in staff
        assert (row.get("director_staff_id") or "S00001") in staff


def test_performance_files_are_deterministic_and_seeded(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 10, seed=4)
    second = generate(tmp_path / "b", 10_000, seed=4)  # services do not change them
    other = generate(tmp_path / "c", 10, seed=5)
    for name in PERFORMANCE:
        assert first.files[name].read_bytes() == second.files[name].read_bytes(), name
        assert first.files[name].read_bytes() != other.files[name].read_bytes(), name


def test_performance_pools(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["pools"])
    institutions = {r["code"]: r for r in read_dicts(county.files["institutions"])}
    heads = {
        r["institution_code"]: int(r["establishment_headcount"])
        for r in read_dicts(county.files["headcount"])
        if r["year"] == str(YEAR)
    }
    staff = {r["staff_id"]: r for r in read_dicts(county.files["staff"])}
    doctors = Counter(r["institution_code"] for r in staff.values())
    assert [r["institution_code"] for r in rows] == list(institutions)  # every one, once
    for r in rows:
        centre = not institutions[r["institution_code"]]["parent_code"]
        pool, share = Decimal(r["pool"]), Decimal(r["reward_share"])
        assert Decimal("0.60") <= share <= Decimal("0.70")
        if centre:
            assert 60_000 <= pool / heads[r["institution_code"]] <= 90_000
            assert Decimal(r["surplus"]) > 0
            assert Decimal("0.40") <= Decimal(r["surplus_share"]) <= Decimal("0.60")
            director = staff[r["director_staff_id"]]
            assert director["institution_code"] == r["institution_code"]
            assert director["establishment"] == "on"
            assert director["from_date"] <= f"{YEAR}-01-01" and not director["to_date"]
        else:
            assert 35_000 <= pool / doctors[r["institution_code"]] <= 60_000
            assert r["surplus"] == r["surplus_share"] == r["director_staff_id"] == ""
        assert "示例" in r["reference"]


def test_staff_coefficients_cover_every_staff_member(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["staff_coefficients"])
    staff = [r["staff_id"] for r in read_dicts(county.files["staff"])]
    assert [r["staff_id"] for r in rows] == staff
    coefficients = [Decimal(r["coefficient"]) for r in rows]
    assert all(Decimal("0.80") <= c <= Decimal("1.20") for c in coefficients)
    assert len(set(coefficients)) > 10


def test_outside_items(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["outside_items"])
    staff = {r["staff_id"]: r for r in read_dicts(county.files["staff"])}
    by_kind: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_kind[r["kind"]].add(staff[r["staff_id"]]["post"])
        assert Decimal(r["amount"]) > 0
    village_doctors = {s for s, r in staff.items() if r["post"] == "village_doctor"}
    public_health = {s for s, r in staff.items() if r["post"] == "public_health"}
    fees = {r["staff_id"] for r in rows if r["kind"] == "family_doctor_fee"}
    allowances = {r["staff_id"] for r in rows if r["kind"] == "epidemic_allowance"}
    assert village_doctors <= fees
    assert by_kind["family_doctor_fee"] == {"village_doctor", "clinical"}
    assert allowances == public_health


def test_assessment_scores(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["scores"])
    institutions = {r["code"]: r for r in read_dicts(county.files["institutions"])}
    assert sorted(r["institution_code"] for r in rows) == sorted(institutions)
    assert {r["year"] for r in rows} == {str(YEAR)}
    scores = {r["institution_code"]: Decimal(r["score"]) for r in rows}
    assert all(0 <= s <= 100 and s == round(s, 2) for s in scores.values())
    failed = [code for code, s in scores.items() if s < 60]
    assert 1 <= len(failed) <= 2
    for code in failed:  # only centres fail, and never a remote one
        assert not institutions[code]["parent_code"]
        assert institutions[code]["remote"] == "false"
    assert all(75 <= s <= 98 for code, s in scores.items() if code not in failed)
    assert all("illustrative" in r["reference"] for r in rows)


def test_medical_income_every_centre_every_month(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["income"])
    centres = [r["code"] for r in read_dicts(county.files["institutions"]) if not r["parent_code"]]
    assert {(r["institution_code"], r["month"]) for r in rows} == {
        (c, f"{YEAR}-{m:02d}") for c in centres for m in range(1, 13)
    }
    assert len(rows) == 12 * 12
    for r in rows:
        assert re.fullmatch(r"\d+\.\d{2}", r["amount"]), r
        assert 100_000 <= Decimal(r["amount"]) <= 2_000_000, r


@freeze_time("2024-03-15")
def test_medical_income_stops_at_the_last_service_month(tmp_path: Path) -> None:
    county = generate(tmp_path, 100, seed=3, year=2024)
    months = {r["month"] for r in read_dicts(county.files["income"])}
    assert months == {"2024-01", "2024-02", "2024-03"}
    [declaration] = read_dicts(county.files["force_majeure"])
    assert declaration["first_month"] in ("2024-01", "2024-02")


def test_pay_levels_show_both_clamps_of_the_remote_adjustment(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["pay_levels"])
    institutions = {r["code"]: r for r in read_dicts(county.files["institutions"])}
    centres = {code for code, r in institutions.items() if not r["parent_code"]}
    assert sorted(r["institution_code"] for r in rows) == sorted(centres)
    assert {r["year"] for r in rows} == {str(YEAR)}
    pay = {r["institution_code"]: Decimal(r["per_head"]) for r in rows}
    benchmark = Decimal(PAY_BENCHMARK)
    gaps = [benchmark - pay[c] for c in centres if institutions[c]["remote"] == "true"]
    assert all(gap > 0 for gap in gaps)  # every remote centre is below the benchmark
    assert any(gap > benchmark * Decimal("0.30") for gap in gaps)  # clamped to 30%
    assert any(gap < benchmark * Decimal("0.10") for gap in gaps)  # raised to 10%
    assert all(80_000 <= p <= 200_000 for p in pay.values())


def test_directive_tasks(county: GeneratedCounty) -> None:
    rows = read_dicts(county.files["tasks"])
    institutions = {r["code"]: r for r in read_dicts(county.files["institutions"])}
    assert 3 <= len(rows) <= 8
    assert len({(r["institution_code"], r["task_code"]) for r in rows}) == len(rows)
    assert all(not institutions[r["institution_code"]]["parent_code"] for r in rows)
    names = " ".join(r["name"] for r in rows)
    for task in ("疫情防控", "对口支援", "突发公共卫生事件处置"):
        assert task in names
    completion = [Decimal(r["completion"]) for r in rows]
    assert all(0 < c <= 1 for c in completion)
    assert 1 in completion and any(c < 1 for c in completion)
    assert all(Decimal(r["amount"]) > 0 and r["reference"] for r in rows)
    assert all("示例" in r["name"] and "illustrative" in r["reference"] for r in rows)


def test_one_force_majeure_declaration(county: GeneratedCounty) -> None:
    [row] = read_dicts(county.files["force_majeure"])
    centres = {r["code"] for r in read_dicts(county.files["institutions"]) if not r["parent_code"]}
    first = date.fromisoformat(row["first_month"] + "-01")
    last = date.fromisoformat(row["last_month"] + "-01")
    assert first.year == last.year == YEAR
    assert last.month == first.month + 1
    affected = row["institutions"].split(";")
    assert 2 <= len(affected) <= 3
    assert set(affected) <= centres
    assert row["reason"] and "illustrative" in row["reference"]


# --- service records --------------------------------------------------------------------


def test_exactly_n_service_records(county: GeneratedCounty, services: list[dict[str, str]]) -> None:
    assert county.records == RECORDS
    assert len(services) == RECORDS


def test_services_refer_to_existing_active_staff_and_valued_items(
    county: GeneratedCounty, services: list[dict[str, str]]
) -> None:
    institutions = {r["code"] for r in read_dicts(county.files["institutions"])}
    staff = {r["staff_id"]: r for r in read_dicts(county.files["staff"])}
    valued_from: dict[str, str] = {}
    category: dict[str, str] = {}
    for r in read_dicts(county.files["catalogue"]):
        code = r["item_code"]
        valued_from[code] = min(valued_from.get(code, r["effective_from"]), r["effective_from"])
        category[code] = r["category"]

    for row in services:
        person = staff[row["staff_id"]]
        day = row["service_date"]
        assert row["institution_code"] in institutions
        assert person["institution_code"] == row["institution_code"], row
        assert person["from_date"] <= day, row
        assert not person["to_date"] or day <= person["to_date"], row
        assert valued_from[row["item_code"]] <= day, row
        assert date.fromisoformat(day).year == YEAR


def test_source_ids_are_unique_within_each_institution(services: list[dict[str, str]]) -> None:
    keys = [(r["institution_code"], r["source_id"]) for r in services]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"HIS\d{9}", r["source_id"]) for r in services)


def test_service_fields(county: GeneratedCounty, services: list[dict[str, str]]) -> None:
    catalogue = {r["item_code"]: r for r in read_dicts(county.files["catalogue"])}
    kinds = {r["code"]: r["kind"] for r in read_dicts(county.files["institutions"])}
    compliance: Counter[str] = Counter()
    for row in services:
        item = catalogue[row["item_code"]]
        quantity = int(row["quantity"])
        assert quantity >= 1
        assert quantity <= (10 if item["unit"] == "床日" else 3)
        assert re.fullmatch(r"P[0-9a-f]{12}", row["patient_ref"])
        if item["category"] == "basic_public_health":
            assert row["compliant"] in ("true", "false")
            compliance[row["compliant"]] += 1
        else:
            assert row["compliant"] == ""
    assert 0.01 < compliance["false"] / sum(compliance.values()) < 0.06
    quantities = Counter(r["quantity"] for r in services)
    assert quantities["1"] > 0.8 * len(services)
    items = Counter(r["item_code"] for r in services)
    assert items.most_common(1)[0][0] == "BM001"  # outpatient visits are the most common
    assert items["BM012"] < items["BM001"] / 100  # grade-3 surgery is rare
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for row in services:
        by_kind[kinds[row["institution_code"]]][catalogue[row["item_code"]]["category"]] += 1
    village = by_kind["village_clinic"]
    assert village["basic_public_health"] > 0.4 * sum(village.values())
    village_items = {
        r["item_code"] for r in services if kinds[r["institution_code"]] == "village_clinic"
    }
    assert not village_items & {"BM008", "BM010", "BM011", "BM012"}  # no beds, no surgery


def test_services_are_in_date_order(services: list[dict[str, str]]) -> None:
    days = [r["service_date"] for r in services]
    assert days == sorted(days)
    assert days[0] == f"{YEAR}-01-01"
    assert days[-1] == f"{YEAR}-12-31"


@freeze_time("2024-03-15")
def test_service_dates_never_lie_after_today(tmp_path: Path) -> None:
    county = generate(tmp_path, 2_000, seed=3, year=2024)
    days = {r["service_date"] for r in read_dicts(county.files["services"])}
    assert max(days) == "2024-03-15"
    assert min(days) == "2024-01-01"


@freeze_time("2024-03-15")
def test_a_year_that_has_not_started_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2025"):
        generate(tmp_path, 10, seed=3, year=2025)


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="services_format"):
        generate(tmp_path, 10, seed=3, services_format="xls")


# --- every services format --------------------------------------------------------------


@pytest.mark.parametrize("services_format", SERVICES_FORMATS)
def test_every_format_holds_the_same_rows(tmp_path: Path, services_format: str) -> None:
    plain = generate(tmp_path / "plain", 5_000, seed=5)
    other = generate(tmp_path / "other", 5_000, seed=5, services_format=services_format)
    path = other.files["services"]
    assert path.suffix == {"xlsx": ".xlsx", "jsonl": ".jsonl"}.get(services_format, ".csv")
    if services_format == "csv-bom":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    if services_format == "csv-gb18030":
        text = path.read_bytes().decode("gb18030")
        assert text.startswith("来源编号,机构编码")
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")
    rows = read_services(path, services_format)
    assert len(rows) == 5_000
    assert rows == read_services(plain.files["services"], "csv")
    for name in ("institutions", "headcount", "staff", "catalogue", *INPUTS):
        assert other.files[name].read_bytes() == plain.files[name].read_bytes()


def test_jsonl_quantity_is_a_number(tmp_path: Path) -> None:
    county = generate(tmp_path, 200, seed=5, services_format="jsonl")
    lines = county.files["services"].read_text(encoding="utf-8").splitlines()
    assert all(isinstance(json.loads(line)["quantity"], int) for line in lines)


def test_progress_reports_every_row_in_chunks(tmp_path: Path) -> None:
    calls: list[int] = []
    generate(tmp_path, 25_001, seed=5, progress=calls.append)
    assert sum(calls) == 25_001
    assert len(calls) == 3
    assert all(0 < n <= 10_000 for n in calls)
