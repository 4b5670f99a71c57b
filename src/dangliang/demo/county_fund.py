"""The synthetic county's medical-insurance fund (医保基金) for the demo generator
(`generator.py`): two medical communities (医共体), per-person enrolment, the claims of the
year and of the year before, the fund's two years and the communities' scores, as the files
of docs/formats.md (医保基金).

ALL OF IT IS 示例数据 (illustrative data): every file carries a column 「备注」 saying so (an
unknown column, which the importers ignore). The communities are led by De Qing's two county
hospitals (named, not registered as institutions); every person, claim and figure is invented.

The demo year is tuned with the actual De Qing rule (`policy.insurance` with the built-in
`deqing_insurance` bundle): last year's claims give last year's spending, the rule gives each
community's budget from the enrolment, and the year's claims of each community are scaled so
that the first community spends 90–96% of its budget (a surplus) and the second 104–110% (an
overspend). Where the bundle does not cover the year, the claims are left as drawn.
"""

from __future__ import annotations

import csv
import math
import random
from calendar import monthrange
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from dangliang.demo.county_reference import CENTRES, Institution
from dangliang.domain.coverage import age_band
from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.importers.formats import (
    CLAIMS,
    COMMUNITIES,
    COMMUNITY_SCORES,
    ENROLMENT,
    FUND_YEARS,
    FileFormat,
)
from dangliang.policy.bundle_loader import load_builtin_bundle
from dangliang.policy.insurance import compute
from dangliang.policy.insurance_records import CommunityInputs, FundInputs, yuan_text

FUND_FILES = {  # format name → file name
    "communities": "communities.csv",
    "enrolment": "enrolment.csv",
    "claims": "claims.csv",
    "fund_years": "fund_years.csv",
    "community_scores": "community_scores.csv",
}
NOTE_HEADER = "备注"
NOTE = "示例数据 / illustrative data"
# (code, name, lead hospital code and name): the first half of the centres (CENTRES order)
# belong to the first community, the rest to the second.
COMMUNITIES_LED = (
    ("YGT01", "德清县人民医院医共体", "H001", "德清县人民医院"),
    ("YGT02", "德清县中医院医共体", "H002", "德清县中医院"),
)
PEOPLE_PER_RECORD = 20  # insured people: records / 20, at least MIN_PEOPLE
MIN_PEOPLE = 400
EMPLOYEE_SHARE = 0.35  # 职工医保; the rest 城乡居民医保
OVER_60_SHARE = {"employee": 0.25, "resident": 0.30}  # born 62–95 years before the year
TURNING_61_SHARE = 1 / 150  # born 61 years before: over_60 from the month after the birthday
JOINER_SHARE = 0.03  # enrol during the year (the others since January of the year before)
LEAVER_SHARE = 0.02  # leave during the year
# Per cell (insurance type, age band): pooled-fund spending a person-year (yuan) and claims a
# person-year. A claim is outpatient or inpatient (yuan, log-uniform), the inpatient share
# set so that the mean claim gives the spending.
SPENDING = {
    ("employee", "to_60"): 2_000,
    ("employee", "over_60"): 5_000,
    ("resident", "to_60"): 1_200,
    ("resident", "over_60"): 3_200,
}
CLAIMS_A_YEAR = {
    ("employee", "to_60"): 3,
    ("employee", "over_60"): 6,
    ("resident", "to_60"): 2,
    ("resident", "over_60"): 4,
}
OUTPATIENT = (20, 600)
INPATIENT = (2_000, 30_000)
MEAN_CLAIM = {  # inpatient? → the mean of its log-uniform amount
    inpatient: (high - low) / math.log(high / low)
    for inpatient, (low, high) in ((False, OUTPATIENT), (True, INPATIENT))
}
INPATIENT_SHARE = {
    cell: (SPENDING[cell] / CLAIMS_A_YEAR[cell] - MEAN_CLAIM[False])
    / (MEAN_CLAIM[True] - MEAN_CLAIM[False])
    for cell in SPENDING
}
OUT_OF_AREA = {False: 0.015, True: 0.045}  # of outpatient, inpatient claims (异地就医): ~4%
OUT_OF_AREA_PROVIDERS = ("YD330100001", "YD330100002", "YD330500001", "YD310000001")
SURPLUS_PERCENT = (90, 96)  # the first community's spending, % of its budget
OVERSPEND_PERCENT = (104, 110)  # the second's
REVENUE_PERCENT = (115, 122)  # a year's revenue, % of the year before's spending
SCORE_TENTHS = ((850, 950), (650, 800))  # the two communities' assessment
FUND_REFERENCE = "县医保局 {year} 年度基金筹资（示例数据）/ illustrative"
SCORE_REFERENCE = "县医保局 {year} 年度医共体考核（示例数据）/ illustrative"


@dataclass(frozen=True)
class Person:
    ref: str
    insurance_type: str
    birth: date
    centre: str
    home: str
    community: str
    first: int  # first month enrolled, as year × 12 + month − 1
    last: int | None  # last month enrolled (inclusive); None = still enrolled

    def months(self, year: int, upto: int = 12) -> range:
        """The months (1–12) of `year` up to `upto` the person is enrolled."""
        end = upto if self.last is None else min(upto, self.last - year * 12 + 1)
        return range(max(1, self.first - year * 12 + 1), end + 1)


@dataclass(frozen=True)
class FundCounty:
    """What `write_fund` wrote: the files (keyed by format name) and their counts."""

    files: dict[str, Path]
    people: int
    claims: int


Claim = tuple[Person, str, bool, date, int]  # person, institution, out of area, day, fen


def write_fund(
    out_dir: Path,
    rng: random.Random,
    institutions: Sequence[Institution],
    year: int,
    last_day: date,
    records: int,
) -> FundCounty:
    """Write the fund's five files to out_dir; claims of `year − 1` and of `year` up to
    `last_day` (today, in the current year)."""
    centres = [i for i in institutions if not i.parent_code]
    half = (len(centres) + 1) // 2
    members = {COMMUNITIES_LED[0][0]: centres[:half], COMMUNITIES_LED[1][0]: centres[half:]}
    clinics: dict[str, list[str]] = defaultdict(list)
    for i in institutions:
        if i.parent_code:
            clinics[i.parent_code].append(i.code)
    files = {name: out_dir / file for name, file in FUND_FILES.items()}
    _write(
        files["communities"],
        COMMUNITIES,
        [
            [code, name, lead, lead_name, ";".join(c.code for c in members[code])]
            for code, name, lead, lead_name in COMMUNITIES_LED
        ],
    )
    homes = {c.code: place for c, (place, _, _) in zip(centres, CENTRES, strict=True)}
    count = max(MIN_PEOPLE, records // PEOPLE_PER_RECORD)
    people = _people(rng, members, homes, year, count)
    _write(files["enrolment"], ENROLMENT, [_enrolment_row(p) for p in people])
    scores = {code: rng.randint(*SCORE_TENTHS[n]) for n, (code, *_) in enumerate(COMMUNITIES_LED)}
    leads = {code: lead for code, _, lead, _ in COMMUNITIES_LED}
    with files["claims"].open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*CLAIMS.column_names, NOTE_HEADER])
        before = _claims(rng, people, year - 1, date(year - 1, 12, 31), clinics, leads)
        count, prior = _write_claims(writer.writerow, before, {}, 0)
        revenue = _revenue(rng, prior)
        percents = dict(zip(scores, (SURPLUS_PERCENT, OVERSPEND_PERCENT), strict=True))
        targets = {
            code: budget * rng.randint(*percents[code]) // 100
            for code, budget in _budgets(people, year, last_day, revenue, prior, scores).items()
        }
        state = rng.getstate()  # the year is drawn twice: to sum each community's, to write
        drawn: dict[str, int] = defaultdict(int)
        for person, *_, fen in _claims(rng, people, year, last_day, clinics, leads):
            drawn[person.community] += fen
        rng.setstate(state)
        scale = {code: (targets.get(code, fen), fen) for code, fen in drawn.items() if fen}
        this_year = _claims(rng, people, year, last_day, clinics, leads)
        count, _ = _write_claims(writer.writerow, this_year, scale, count)
    _write(
        files["fund_years"],
        FUND_YEARS,
        [
            # The year before: its own prior spending as the bureau reported it (the log has
            # no claims of that year); the demo year's comes from the claims in the log.
            [
                str(year - 1),
                yuan_text(_revenue(rng, prior)),
                yuan_text(prior // 105 * 100),
                FUND_REFERENCE.format(year=year - 1),
            ],
            [str(year), yuan_text(revenue), "", FUND_REFERENCE.format(year=year)],
        ],
    )
    _write(
        files["community_scores"],
        COMMUNITY_SCORES,
        [
            [code, str(year), f"{tenths // 10}.{tenths % 10}", SCORE_REFERENCE.format(year=year)]
            for code, tenths in scores.items()
        ],
    )
    return FundCounty(files, len(people), count)


# ---- people ---------------------------------------------------------------------------------


def _people(
    rng: random.Random,
    members: dict[str, list[Institution]],
    homes: dict[str, str],
    year: int,
    count: int,
) -> list[Person]:
    """`count` people spread over the centres' townships (weights 0.6–1.4), enrolled since
    January of the year before; a few join or leave during the year, a few turn 61."""
    community = {c.code: code for code, centres in members.items() for c in centres}
    centres = sorted(community)
    weights = [rng.uniform(0.6, 1.4) for _ in centres]
    since = (year - 1) * 12
    turning = set(rng.sample(range(count), max(3, round(count * TURNING_61_SHARE))))
    people: list[Person] = []
    for n, centre in enumerate(rng.choices(centres, weights, k=count)):
        kind = "employee" if rng.random() < EMPLOYEE_SHARE else "resident"
        if n in turning:
            born_in = year - 61
        elif rng.random() < OVER_60_SHARE[kind]:
            born_in = year - rng.randint(62, 95)
        else:
            born_in = year - rng.randint(18 if kind == "employee" else 2, 60)
        birth = date(born_in, 1, 1) + timedelta(rng.randrange(365))
        first, last = since, None
        draw = rng.random()
        if draw < JOINER_SHARE:
            first = year * 12 + rng.randint(1, 11)  # February to December
        elif draw < JOINER_SHARE + LEAVER_SHARE:
            last = year * 12 + rng.randint(0, 10)  # January to November
        ref = f"CB{n + 1:07d}"
        people.append(
            Person(ref, kind, birth, centre, homes[centre], community[centre], first, last)
        )
    return people


def _enrolment_row(p: Person) -> list[str]:
    to_month = "" if p.last is None else _month(p.last)
    return [p.ref, p.insurance_type, str(p.birth), p.home, p.community, _month(p.first), to_month]


def _month(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# ---- claims ---------------------------------------------------------------------------------


def _claims(
    rng: random.Random,
    people: Sequence[Person],
    year: int,
    last_day: date,
    clinics: dict[str, list[str]],
    leads: dict[str, str],
) -> Iterator[Claim]:
    """Each person's claims of `year` (up to `last_day`), person by person: a Poisson number
    for the months enrolled; outpatient at the person's centre, one of its clinics or the
    lead hospital, inpatient at the lead hospital or the centre; a few out of area."""
    draw = rng.random
    days = [monthrange(year, m)[1] if m < last_day.month else last_day.day for m in range(1, 13)]
    for p in people:
        months = p.months(year, last_day.month)
        if not months:
            continue
        cell = (p.insurance_type, age_band(p.birth, f"{year}-07"))
        own = clinics.get(p.centre) or [p.centre]
        for _ in range(_poisson(rng, CLAIMS_A_YEAR[cell] * len(months) / 12)):
            month = months[int(draw() * len(months))]
            inpatient = draw() < INPATIENT_SHARE[cell]
            low, high = INPATIENT if inpatient else OUTPATIENT
            fen = round(low * 100 * (high / low) ** draw())
            out_of_area = draw() < OUT_OF_AREA[inpatient]
            where, place = p.centre, draw()
            if out_of_area:
                where = OUT_OF_AREA_PROVIDERS[int(place * len(OUT_OF_AREA_PROVIDERS))]
            elif place > (0.3 if inpatient else 0.8):
                where = leads[p.community]
            elif place < 0.35 and not inpatient:
                where = own[int(place / 0.35 * len(own))]
            day = date(year, month, int(draw() * days[month - 1]) + 1)
            yield p, where, out_of_area, day, fen


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _write_claims(
    write: Callable[[list[str]], object],
    claims: Iterator[Claim],
    scale: dict[str, tuple[int, int]],
    count: int,
) -> tuple[int, int]:
    """Write claims numbered after `count`, each community's fen × target / drawn (rounded
    half up, at least 1 fen); (the count so far, the fen written)."""
    total = 0
    for person, where, out_of_area, day, fen in claims:
        target, drawn = scale.get(person.community, (1, 1))
        fen = max(1, (2 * fen * target + drawn) // (2 * drawn))
        total += fen
        count += 1
        write(
            [
                f"JS{day.year}{count:08d}",
                person.ref,
                person.community,
                where,
                "yes" if out_of_area else "no",
                day.isoformat(),
                yuan_text(fen),
                NOTE,
            ]
        )
    return count, total


# ---- the fund's figures ---------------------------------------------------------------------


def _revenue(rng: random.Random, spending: int) -> int:
    """A year's revenue: 115–122% of the spending of the year before, to the hundred yuan."""
    return spending * rng.randint(*REVENUE_PERCENT) // 1_000_000 * 10_000


def _budgets(
    people: Sequence[Person],
    year: int,
    last_day: date,
    revenue: int,
    prior: int,
    scores: dict[str, int],
) -> dict[str, int]:
    """Each community's budget for the year by the De Qing rule (the part of the year up to
    `last_day`); empty where the built-in bundle does not cover the year."""
    enrolled: dict[str, dict[tuple[int, str, str], int]] = {
        code: defaultdict(int) for code, *_ in COMMUNITIES_LED
    }
    for p in people:
        cells = enrolled[p.community]
        january, december = (age_band(p.birth, f"{year}-{m:02d}") for m in (1, 12))
        for m in p.months(year):
            band = january if january == december else age_band(p.birth, f"{year}-{m:02d}")
            cells[(m, p.insurance_type, band)] += 1
    fund = FundInputs(
        year,
        revenue,
        prior,
        {
            code: CommunityInputs(
                code, name, lead, lead_name, (), Decimal(scores[code]) / 10, enrolled[code]
            )
            for code, name, lead, lead_name in COMMUNITIES_LED
        },
    )
    try:
        result = compute(load_builtin_bundle("deqing_insurance"), fund, Period(year))
    except DomainError:
        return {}
    days = (min(last_day, date(year, 12, 31)) - date(year, 1, 1)).days + 1
    whole = (date(year, 12, 31) - date(year, 1, 1)).days + 1
    return {code: c.figures["budget"] * days // whole for code, c in result.communities.items()}


def _write(path: Path, fmt: FileFormat, rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*fmt.column_names, NOTE_HEADER])
        writer.writerows([*row, NOTE] for row in rows)
