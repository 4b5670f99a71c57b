"""The insurance fund's claims and enrolment read model (`projections.insurance_cube`), on
SQLite and PostgreSQL: age bands turning mid-year, enrolments ending, corrections and voids
read as the log stood before and after them, a rebuild, and the SQL catch-up path against the
library's mapper for a few hundred records the library itself wrote — with every figure also
checked against a naive fold of the events."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import select

from dangliang.application import Dangliang
from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.coverage import age_band, month_after
from dangliang.projections import insurance_queries as q
from dangliang.projections.insurance_cube import (
    InsuranceProjection,
    InsuranceTables,
    change_points,
    turning_month,
)
from dangliang.projections.tracking import catch_up

YEAR = 2024


def settle(claim_id: str, community: str, on: date, fen: int, **kw: Any) -> Claim:
    return Claim.settle(
        claim_id=claim_id,
        insured_ref=kw.get("insured_ref", f"P-{claim_id}"),
        community_code=community,
        institution_code=kw.get("institution", "C01"),
        out_of_area=kw.get("out_of_area", False),
        settled_on=on,
        fund_fen=fen,
        actor="t",
        import_ref=kw.get("import_ref", "claims-2024.csv"),
    )


def enrol(ref: str, start: str, born: date, community: str = "G1", **kw: Any) -> Enrolment:
    return Enrolment.record(
        insured_ref=ref,
        from_month=start,
        insurance_type=kw.get("insurance_type", "resident"),
        birth_date=born,
        home=kw.get("home", "甲镇"),
        community_code=community,
        to_month=kw.get("to_month"),
        actor="t",
        import_ref="enrolment-2024.csv",
    )


def read(app: Dangliang, fn: Any, *args: Any, **kw: Any) -> Any:
    with app.engine.connect() as conn:
        return fn(conn, *args, **kw)


def test_bands_turn_the_month_after_the_61st_birthday_and_enrolments_end(app: Dangliang) -> None:
    turning = enrol("P1", "2024-01", date(1963, 7, 15))  # 61 on 15 July: over 60 from August
    on_the_first = enrol("P2", "2023-06", date(1963, 9, 1))  # 61 on 1 Sept: over 60 from Sept
    ending = enrol("P3", "2023-06", date(1980, 2, 29), community="G2", to_month="2024-04")
    ends_before_turning = enrol("P4", "2024-02", date(1963, 11, 2), to_month="2024-11")
    employee = enrol("P5", "2024-03", date(1950, 1, 1), insurance_type="employee")
    app.log.save(turning, on_the_first, ending, ends_before_turning, employee)
    app.catch_up()
    got = read(app, q.enrolled, YEAR, None)
    g1 = got["G1"]
    assert [g1.get((m, "resident", "to_60")) for m in (7, 8)] == [3, 2]
    assert [g1.get((m, "resident", "over_60")) for m in (6, 7, 8, 9)] == [None, None, 1, 2]
    assert g1[(11, "resident", "to_60")] == 1 and (12, "resident", "to_60") not in g1
    assert {m for (m, kind, _) in g1 if kind == "employee"} == set(range(3, 13))
    assert got["G2"] == {(m, "resident", "to_60"): 1 for m in range(1, 5)}
    assert turning_month(date(1963, 7, 15)) == "2024-08"
    assert turning_month(date(1963, 9, 1)) == "2024-09"
    assert read(app, q.enrolled, 2023, None)["G1"] == {
        (m, "resident", "to_60"): 1 for m in (6, 7, 8, 9, 10, 11, 12)
    }
    listed = read(app, q.enrolments_in, community="G1", year=YEAR, position=None)
    assert [(e["insured_ref"], e["state"]) for e in listed] == [
        ("P1", "recorded"),
        ("P2", "recorded"),
        ("P4", "recorded"),
        ("P5", "recorded"),
    ]
    assert read(app, q.enrolments_in, community="G2", year=2025, position=None) == []


def test_change_points_agree_with_the_age_band_of_every_month() -> None:
    rng = random.Random(7)
    for _ in range(2_000):
        born = date(rng.randint(1940, 2000), rng.randint(1, 12), rng.choice([1, 2, 15, 28]))
        start = f"{rng.randint(2000, 2030)}-{rng.randint(1, 12):02d}"
        end = rng.choice([None, month_after(start, rng.randint(0, 200))])
        people: dict[tuple[str, str], int] = defaultdict(int)
        for month, band, delta in change_points(start, end, born):
            people[(month, band)] += delta
        running = {"to_60": 0, "over_60": 0}
        month = month_after(start, -1)
        for _ in range(260):
            month = month_after(month)
            for band in running:
                running[band] += people.get((month, band), 0)
            enrolled = end is None or month <= end
            expected = {b: int(enrolled and age_band(born, month) == b) for b in running}
            assert running == expected, (born, start, end, month)


def test_a_correction_moves_a_claim_and_a_void_takes_one_out_as_of_each_position(
    app: Dangliang,
) -> None:
    app.log.save(
        settle("A", "G1", date(2024, 3, 5), 10_000),
        settle("B", "G1", date(2024, 3, 9), 2_500, out_of_area=True),
        settle("C", "G2", date(2024, 5, 1), 700),
        settle("D", "G1", date(2023, 12, 31), 99),  # last year
    )
    settled = app.catch_up()
    a = app.log.repository.get(Claim.create_id("A"))
    a.correct(
        community_code="G2",
        institution_code="C02",
        out_of_area=False,
        settled_on=date(2024, 6, 30),
        fund_fen=9_000,
        reason="结算机构录错",
        actor="t",
        import_ref="corrections-1.csv",
    )
    app.log.save(a)
    corrected = app.catch_up()
    b = app.log.repository.get(Claim.create_id("B"))
    b.void(reason="重复结算", actor="t")
    app.log.save(b)
    voided = app.catch_up()
    app.log.save(*(settle(f"L{i}", "G3", date(2024, 12, 1), 1) for i in range(30)))
    app.catch_up()
    before = {"G1": {(3, False): 10_000, (3, True): 2_500}, "G2": {(5, False): 700}}
    after_correction = {"G1": {(3, True): 2_500}, "G2": {(5, False): 700, (6, False): 9_000}}
    after_void = {"G2": {(5, False): 700, (6, False): 9_000}}
    for at, expected in ((settled, before), (corrected, after_correction), (voided, after_void)):
        assert read(app, q.spending, YEAR, at) == expected
        assert read(app, q.county_spending, YEAR, at) == sum(
            fen for cells in expected.values() for fen in cells.values()
        )
    assert read(app, q.spending, YEAR, None) == {**after_void, "G3": {(12, False): 30}}
    assert read(app, q.county_spending, 2023, None) == 99
    assert read(app, q.spending, YEAR, 0) == {}

    def claims(community: str, at: int | None, **kw: Any) -> list[tuple[str, int, str]]:
        found = read(app, q.claims_in, community=community, year=YEAR, position=at, **kw)
        return [(c["claim_id"], c["fund_fen"], c["state"]) for c in found]

    assert claims("G1", settled) == [("A", 10_000, "recorded"), ("B", 2_500, "recorded")]
    assert claims("G1", corrected) == [("B", 2_500, "recorded")]
    assert claims("G1", voided) == [] == claims("G1", None)
    assert claims("G2", corrected) == [("C", 700, "recorded"), ("A", 9_000, "corrected")]
    assert claims("G2", settled, month=6) == [] and claims("G2", None, month=6) == [
        ("A", 9_000, "corrected")
    ]
    assert len(claims("G3", None, limit=5)) == 5
    moved = read(app, q.claims_in, community="G2", year=YEAR, position=None, month=6)[0]
    assert moved["import_ref"] == "corrections-1.csv" and moved["reason"] == "结算机构录错"
    assert moved["notification_id"] == corrected

    changes = read(app, q.changes_between, year=YEAR, after=settled, upto=voided)
    assert sorted(changes) == ["G1", "G2"]
    correction, void = changes["G1"]
    assert changes["G2"] == [correction]
    assert (correction["kind"], correction["claim_id"], correction["reason"]) == (
        "corrected",
        "A",
        "结算机构录错",
    )
    assert correction["old"]["fund_fen"] == 10_000 and correction["old"]["month"] == "2024-03"
    assert correction["new"]["fund_fen"] == 9_000 and correction["new"]["community"] == "G2"
    assert (void["kind"], void["claim_id"], void["new"]) == ("voided", "B", None)
    assert void["old"]["fund_fen"] == 2_500
    assert [(c["ref"], c["old_fen"], c["new_fen"]) for c in changes["G1"]] == [
        ("A", 10_000, 9_000),
        ("B", 2_500, None),
    ]
    assert read(app, q.changes_between, year=2023, after=settled, upto=voided) == {}


def test_an_enrolment_corrected_and_voided_as_of_each_position(app: Dangliang) -> None:
    app.log.save(enrol("P1", "2024-01", date(1990, 1, 1)), enrol("P2", "2024-01", date(1990, 1, 1)))
    recorded = app.catch_up()
    p1 = app.log.repository.get(Enrolment.create_id("P1", "2024-01"))
    p1.correct(
        insurance_type="employee",
        birth_date=date(1963, 7, 15),
        home="乙镇",
        community_code="G2",
        to_month="2024-09",
        reason="户籍核对",
        actor="t",
    )
    app.log.save(p1)
    corrected = app.catch_up()
    p2 = app.log.repository.get(Enrolment.create_id("P2", "2024-01"))
    p2.void(reason="重复登记", actor="t")
    app.log.save(p2)
    voided = app.catch_up()
    everyone = {(m, "resident", "to_60"): 2 for m in range(1, 13)}
    assert read(app, q.enrolled, YEAR, recorded) == {"G1": everyone}
    moved = {(m, "employee", "to_60"): 1 for m in range(1, 8)}
    moved.update({(m, "employee", "over_60"): 1 for m in (8, 9)})
    after = read(app, q.enrolled, YEAR, corrected)
    assert after == {"G1": {(m, "resident", "to_60"): 1 for m in range(1, 13)}, "G2": moved}
    assert read(app, q.enrolled, YEAR, voided) == {"G2": moved} == read(app, q.enrolled, YEAR, None)
    listed = read(app, q.enrolments_in, community="G1", year=YEAR, position=recorded)
    assert [e["insured_ref"] for e in listed] == ["P1", "P2"]
    assert read(app, q.enrolments_in, community="G1", year=YEAR, position=None) == []
    changes = read(app, q.changes_between, year=YEAR, after=recorded, upto=voided)
    assert [c["kind"] for c in changes["G1"]] == ["corrected", "voided"]
    assert changes["G2"][0]["new"]["to_month"] == "2024-09"
    assert changes["G2"][0]["old"]["community"] == "G1"
    assert (changes["G2"][0]["old_months"], changes["G2"][0]["new_months"]) == (
        "2024-01–",
        "2024-01–2024-09",
    )


# ---- a few hundred records: naive fold, as-of positions, SQL path = mapper path, rebuild ----


class Naive:
    """What the figures must be: each record's values folded from the events, per position."""

    def __init__(self) -> None:
        self.claims: dict[str, dict[str, Any] | None] = {}
        self.enrolments: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.snapshots: dict[int, tuple[dict[str, Any], dict[Any, Any]]] = {}

    def snapshot(self, position: int) -> None:
        self.snapshots[position] = (dict(self.claims), dict(self.enrolments))

    def spending(self, position: int) -> dict[str, dict[tuple[int, bool], int]]:
        out: dict[str, dict[tuple[int, bool], int]] = defaultdict(lambda: defaultdict(int))
        for c in self.snapshots[position][0].values():
            if c is not None and c["settled_on"].year == YEAR:
                out[c["community"]][(c["settled_on"].month, c["out_of_area"])] += c["fen"]
        return {k: {m: f for m, f in v.items() if f} for k, v in out.items() if any(v.values())}

    def enrolled(self, position: int) -> dict[str, dict[tuple[int, str, str], int]]:
        out: dict[str, dict[tuple[int, str, str], int]] = defaultdict(lambda: defaultdict(int))
        for (_, start), e in self.snapshots[position][1].items():
            if e is None:
                continue
            for m in range(1, 13):
                month = f"{YEAR}-{m:02d}"
                if start <= month and (e["to"] is None or month <= e["to"]):
                    out[e["community"]][(m, e["type"], age_band(e["born"], month))] += 1
        return {k: dict(v) for k, v in out.items()}


COMMUNITIES = ("G1", "G2", "G3")


def new_claim(rng: random.Random, cid: str, naive: Naive) -> Claim:
    on = date(rng.choice([2023, 2024, 2024]), rng.randint(1, 12), rng.randint(1, 28))
    c = {"community": rng.choice(COMMUNITIES), "settled_on": on, "fen": rng.randint(0, 90_000)}
    c["out_of_area"] = rng.random() < 0.2
    naive.claims[cid] = c
    return settle(cid, c["community"], on, c["fen"], out_of_area=c["out_of_area"])


def new_enrolment(rng: random.Random, ref: str, naive: Naive) -> Enrolment:
    start = f"{rng.choice([2022, 2023, 2024])}-{rng.randint(1, 12):02d}"
    e = {"community": rng.choice(COMMUNITIES), "type": rng.choice(["resident", "employee"])}
    e["born"] = date(rng.randint(1955, 1970), rng.randint(1, 12), rng.choice([1, 9, 28]))
    e["to"] = rng.choice([None, None, month_after(start, rng.randint(0, 30))])
    naive.enrolments[(ref, start)] = e
    return enrol(ref, start, e["born"], e["community"], insurance_type=e["type"], to_month=e["to"])


def change_claim(rng: random.Random, app: Dangliang, cid: str, naive: Naive) -> None:
    claim = app.log.repository.get(Claim.create_id(cid))
    if rng.random() < 0.3:
        claim.void(reason="作废", actor="t")
        naive.claims[cid] = None
    else:
        on, fen, community = date(2024, rng.randint(1, 12), 3), rng.randint(1, 5_000), "G2"
        claim.correct(
            community_code=community,
            institution_code="C09",
            out_of_area=False,
            settled_on=on,
            fund_fen=fen,
            reason="更正",
            actor="t",
        )
        naive.claims[cid] = {"community": community, "settled_on": on, "fen": fen}
        naive.claims[cid]["out_of_area"] = False
    app.log.save(claim)


def change_enrolment(rng: random.Random, app: Dangliang, key: Any, naive: Naive) -> None:
    enrolment = app.log.repository.get(Enrolment.create_id(*key))
    if rng.random() < 0.3:
        enrolment.void(reason="作废", actor="t")
        naive.enrolments[key] = None
    else:
        end = rng.choice([None, "2024-10"])
        end = end if end and end >= key[1] else None
        e = {"community": rng.choice(COMMUNITIES), "type": "employee", "to": end}
        e["born"] = date(1963, 7, 15)
        enrolment.correct(
            insurance_type="employee",
            birth_date=e["born"],
            home=f"乙{len(naive.snapshots)}",
            community_code=e["community"],
            to_month=end,
            reason="更正",
            actor="t",
        )
        naive.enrolments[key] = e
    app.log.save(enrolment)


def fill(app: Dangliang, rng: random.Random, naive: Naive) -> list[int]:
    """300 claims and 200 enrolments, about 100 corrections and voids, saved in groups;
    catch-ups at some of the positions in between (the others are read as of)."""
    positions = []
    for group in range(10):
        claims = [new_claim(rng, f"K{group:02d}{i:02d}", naive) for i in range(30)]
        people = [new_enrolment(rng, f"R{group:02d}{i:02d}", naive) for i in range(20)]
        app.log.save(*claims, *people)
        for cid in rng.sample(sorted(k for k, v in naive.claims.items() if v), 6):
            change_claim(rng, app, cid, naive)
        for key in rng.sample(sorted(k for k, v in naive.enrolments.items() if v), 4):
            change_enrolment(rng, app, key, naive)
        naive.snapshot(app.log.head())
        positions.append(app.log.head())
        if rng.random() < 0.5:
            app.catch_up()
    app.catch_up()
    return positions


def table_rows(app: Dangliang, t: InsuranceTables) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows without their sequence numbers, sorted; zero sums left out."""
    out = {}
    with app.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            rows = [
                tuple(r) for r in conn.execute(select(*(c for c in table.c if c.name != "seq")))
            ]
            if (
                table.name.startswith(("ins_spending", "ins_enrolment_changes"))
                and "deltas" not in table.name
            ):
                rows = [r for r in rows if r[-1] != 0]
            out[table.name.split("_x")[0]] = sorted(rows, key=repr)
    return out


def answers(app: Dangliang, positions: list[int], t: InsuranceTables | None = None) -> list[Any]:
    kw = {"t": t} if t is not None else {}
    out = []
    with app.engine.connect() as conn:
        for at in [*positions, None]:
            out.append(
                (
                    q.enrolled(conn, YEAR, at, **kw),
                    q.spending(conn, YEAR, at, **kw),
                    q.county_spending(conn, 2023, at, **kw),
                )
            )
            for community in ("G1", "G2", "G3"):
                out.append(q.claims_in(conn, community=community, year=YEAR, position=at, **kw))
                out.append(q.enrolments_in(conn, community=community, year=YEAR, position=at, **kw))
        out.append(q.changes_between(conn, year=YEAR, after=positions[2], upto=positions[6], **kw))
    return out


def test_hundreds_of_records_as_of_every_position_sql_equals_mapper_and_rebuild(
    app: Dangliang,
) -> None:
    naive = Naive()
    positions = fill(app, random.Random(2024), naive)
    for at in positions:
        assert read(app, q.spending, YEAR, at) == naive.spending(at), at
        assert read(app, q.enrolled, YEAR, at) == naive.enrolled(at), at
    before = answers(app, positions)
    incremental = table_rows(app, InsuranceProjection().t)
    assert len(incremental["ins_claims"]) > 300 and len(incremental["ins_enrolment_deltas"]) > 200

    mapper = InsuranceProjection("x", bulk_sql=False)
    mapper.batch_size = 97  # many small batches through the mapper
    catch_up(app.write_engine, app.log, mapper)
    assert table_rows(app, mapper.t) == incremental
    assert answers(app, positions, mapper.t) == before

    projection = InsuranceProjection()
    projection.drop(app.write_engine)
    projection.create(app.write_engine, indexes=False)
    catch_up(app.write_engine, app.log, projection)
    projection.add_indexes(app.write_engine)
    assert table_rows(app, projection.t) == incremental
    assert answers(app, positions) == before
    app.rebuild()
    status = app.projection_status()
    assert status.projections["insurance"] == status.head
    assert answers(app, positions) == before
