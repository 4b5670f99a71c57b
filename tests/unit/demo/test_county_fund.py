"""The demo county's medical-insurance fund (`demo/county_fund.py`): deterministic from the
seed, readable by the importers, labelled 示例数据, and shaped so that under the De Qing rule
one community ends the year with a surplus and the other with an overspend."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from pydantic import TypeAdapter

from dangliang.demo.county_fund import FUND_FILES, MIN_PEOPLE, NOTE, NOTE_HEADER
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.domain.coverage import age_band
from dangliang.domain.periods import Period
from dangliang.importers import formats
from dangliang.importers.bulk_insurance import ClaimRow, EnrolmentRow
from dangliang.importers.fields import validate_chunk
from dangliang.importers.insurance_loaders import CommunityRow, CommunityScoreRow, FundYearRow
from dangliang.importers.readers import open_table
from dangliang.policy.bundle_loader import load_builtin_bundle
from dangliang.policy.insurance import compute
from dangliang.policy.insurance_records import CommunityInputs, FundInputs, FundResult

YEAR = 2024
ROWS: dict[str, Any] = {
    "communities": CommunityRow,
    "enrolment": EnrolmentRow,
    "claims": ClaimRow,
    "fund_years": FundYearRow,
    "community_scores": CommunityScoreRow,
}


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCounty:
    return generate(tmp_path_factory.mktemp("fund"), 12_000, seed=5, year=YEAR)


def read(county: GeneratedCounty, name: str) -> list[dict[str, Any]]:
    """A fund file through the importers' reader and row model: every row valid."""
    reader = open_table(county.files[name], formats.INSURANCE_FORMATS[name])
    rows = list(reader)
    assert reader.problems == []
    assert reader.ignored_columns == [NOTE_HEADER]  # the 示例数据 label, ignored on import
    good, problems = validate_chunk(TypeAdapter(list[ROWS[name]]), name, rows)
    assert problems == []
    assert len(good) == len(rows) > 0
    return [row for _, row in good]


def fund_year(county: GeneratedCounty, year: int = YEAR) -> FundResult:
    """The De Qing rule on the files as the demo imports them (built-in bundle)."""
    enrolled: dict[str, dict[tuple[int, str, str], int]] = defaultdict(lambda: defaultdict(int))
    for e in read(county, "enrolment"):
        for m in range(1, 13):
            month = f"{year}-{m:02d}"
            if e["from_month"] <= month and (e["to_month"] is None or month <= e["to_month"]):
                band = age_band(e["birth_date"], month)
                enrolled[e["community_code"]][(m, e["insurance_type"], band)] += 1
    spending: dict[str, dict[tuple[int, bool], int]] = defaultdict(lambda: defaultdict(int))
    prior = 0
    for c in read(county, "claims"):
        if c["settled_on"].year == year:
            key = (c["settled_on"].month, bool(c["out_of_area"]))
            spending[c["community_code"]][key] += c["fund_amount"]
        elif c["settled_on"].year == year - 1:
            prior += c["fund_amount"]
    scores = {r["community_code"]: r["score"] for r in read(county, "community_scores")}
    revenue = {r["year"]: r["revenue"] for r in read(county, "fund_years")}
    communities = {
        r["community_code"]: CommunityInputs(
            r["community_code"],
            r["name"],
            r["lead_hospital_code"],
            r["lead_hospital_name"],
            score=scores[r["community_code"]],
            enrolled=dict(enrolled[r["community_code"]]),
            spending=dict(spending[r["community_code"]]),
        )
        for r in read(county, "communities")
    }
    fund = FundInputs(year, revenue[year], prior, communities)
    return compute(load_builtin_bundle("deqing_insurance"), fund, Period(year))


# --- determinism ------------------------------------------------------------------------


def test_the_same_seed_writes_the_same_fund_and_another_seed_another(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 500, seed=8, year=YEAR)
    again = generate(tmp_path / "b", 500, seed=8, year=YEAR)
    other = generate(tmp_path / "c", 500, seed=9, year=YEAR)
    assert (first.insured, first.claims) == (again.insured, again.claims)
    for name in FUND_FILES:
        assert first.files[name].read_bytes() == again.files[name].read_bytes(), name
    assert first.files["claims"].read_bytes() != other.files["claims"].read_bytes()
    assert first.files["enrolment"].read_bytes() != other.files["enrolment"].read_bytes()
    # the fund has a generator of its own: the other files do not depend on it
    assert first.files["staff"].read_bytes() == again.files["staff"].read_bytes()


def test_the_fund_files_sit_beside_the_others_labelled_illustrative(
    county: GeneratedCounty,
) -> None:
    for name, file in FUND_FILES.items():
        path = county.files[name]
        assert path == county.out_dir / file
        with path.open(encoding="utf-8", newline="") as f:
            header, *rows = list(csv.reader(f))
        assert header == [*formats.INSURANCE_FORMATS[name].column_names, NOTE_HEADER]
        assert rows and all(row[-1] == NOTE for row in rows), name
        assert "示例数据" in NOTE


# --- the people and their claims --------------------------------------------------------


def test_two_communities_share_the_centres_each_led_by_a_county_hospital(
    county: GeneratedCounty,
) -> None:
    communities = read(county, "communities")
    with county.files["institutions"].open(encoding="utf-8", newline="") as f:
        institutions = {r["code"]: r for r in csv.DictReader(f)}
    centres = {code for code, r in institutions.items() if not r["parent_code"]}
    members = [set(c["members"]) for c in communities]
    assert len(communities) == 2 and members[0] | members[1] == centres
    assert not members[0] & members[1]
    assert all(c["lead_hospital_code"] not in institutions for c in communities)
    scores = read(county, "community_scores")
    assert len({s["score"] for s in scores}) == 2 and all(s["year"] == YEAR for s in scores)
    years = {r["year"]: r for r in read(county, "fund_years")}
    assert set(years) == {YEAR - 1, YEAR} and all(r["revenue"] > 0 for r in years.values())
    assert years[YEAR]["prior_spending"] is None  # the demo year's comes from the claims


def test_enrolment_spreads_ages_types_and_changes_during_the_year(
    county: GeneratedCounty,
) -> None:
    people = read(county, "enrolment")
    assert len(people) == county.insured == max(MIN_PEOPLE, 12_000 // 20)
    assert len({p["insured_ref"] for p in people}) == len(people)
    assert Counter(p["insurance_type"] for p in people).keys() == {"employee", "resident"}
    bands = Counter(age_band(p["birth_date"], f"{YEAR}-01") for p in people)
    assert bands["over_60"] > len(people) // 10 and bands["to_60"] > len(people) // 2
    turning = [p for p in people if p["birth_date"].year == YEAR - 61]
    assert len(turning) >= 3
    assert any(  # to_60 in January, over_60 from the month after the 61st birthday
        age_band(p["birth_date"], f"{YEAR}-01") == "to_60"
        and age_band(p["birth_date"], f"{YEAR}-12") == "over_60"
        for p in turning
    )
    assert any(p["from_month"] > f"{YEAR}-01" for p in people)  # joined during the year
    assert any(p["to_month"] is not None for p in people)  # left during the year


def test_claims_cover_the_year_and_the_year_before(county: GeneratedCounty) -> None:
    claims = read(county, "claims")
    assert len(claims) == county.claims
    assert len({c["claim_id"] for c in claims}) == len(claims)
    assert {c["settled_on"].year for c in claims} == {YEAR - 1, YEAR}
    people = {p["insured_ref"]: p for p in read(county, "enrolment")}
    members = {c["community_code"]: c for c in read(county, "communities")}
    amounts = sorted(c["fund_amount"] for c in claims)
    assert 1_000 <= amounts[len(amounts) // 2] <= 50_000  # tens to hundreds of yuan, typically
    assert amounts[-1] >= 500_000  # and thousands for a stay in hospital
    out_of_area = [c for c in claims if c["out_of_area"]]
    assert 0 < len(out_of_area) < len(claims) // 10
    for c in claims:
        person = people[c["insured_ref"]]
        assert c["community_code"] == person["community_code"]
        month = c["settled_on"].isoformat()[:7]
        assert person["from_month"] <= month <= (person["to_month"] or "9999-12")
        if not c["out_of_area"]:
            community = members[c["community_code"]]
            place = c["institution_code"]
            assert place == community["lead_hospital_code"] or place[:3] in community["members"]


# --- the year under the De Qing rule ----------------------------------------------------


@pytest.mark.parametrize(("records", "seed"), [(10, 1), (3_000, 2024), (12_000, 5), (40_000, 77)])
def test_one_community_ends_in_surplus_the_other_in_overspend(
    tmp_path: Path, records: int, seed: int
) -> None:
    county = generate(tmp_path, records, seed=seed, year=YEAR)
    result = fund_year(county)
    first, second = (result.communities[code].figures for code in sorted(result.communities))
    assert first["surplus"] > 0 == first["overspend"]
    assert second["overspend"] > 0 == second["surplus"]
    assert 0.88 < first["spending"] / first["budget"] < 0.97
    assert 1.03 < second["spending"] / second["budget"] < 1.11
    assert result.figures["prior_spending"] > 0  # last year's claims
    assert result.figures["revenue"] > result.figures["budget_total"]  # not capped


def test_the_fund_of_the_current_year_stops_at_today(tmp_path: Path) -> None:
    with freeze_time("2025-03-10"):
        county = generate(tmp_path, 10, seed=3, year=2025)
    last = max(c["settled_on"] for c in read(county, "claims"))
    assert date(2025, 3, 1) <= last <= date(2025, 3, 10)
    assert county.insured == MIN_PEOPLE
