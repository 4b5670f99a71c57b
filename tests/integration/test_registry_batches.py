"""The registry and the inputs' owners write a catch-up's rows together at its end
(`registry.Replacements`, `facts.Owners`): several changes to one row within one catch-up
leave the last, as if each had been written in turn, and a later catch-up changes rows an
earlier one wrote (finding their codes and owners in the tables), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from dangliang.application import Dangliang
from dangliang.domain.catalogue import CatalogueItem
from dangliang.domain.inputs import StaffYear
from dangliang.domain.institution import Institution
from dangliang.domain.staff import Staff
from dangliang.projections import facts as inp
from dangliang.projections import registry as reg

ACTOR = "tester"


def rows(app: Dangliang, table: object) -> list[tuple[object, ...]]:
    with app.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]  # type: ignore[attr-defined]


def coefficients(app: Dangliang) -> list[tuple[object, ...]]:
    with app.engine.connect() as conn:
        found = conn.execute(
            select(inp.facts.c.year, inp.facts.c.key, inp.facts.c.payload)
            .where(inp.facts.c.kind == "staff_coefficient")
            .order_by(inp.facts.c.notification_id)
        )
        return [(year, key, json.loads(payload)["coefficient"]) for year, key, payload in found]


def test_several_changes_to_a_row_in_one_catch_up_leave_the_last(app: Dangliang) -> None:
    centre = Institution.register(
        code="C01",
        name="甲镇卫生院",
        kind="township_health_centre",
        parent_code=None,
        remote=False,
        actor=ACTOR,
    )
    centre.describe(
        name="甲镇中心卫生院",
        kind="township_health_centre",
        parent_code=None,
        remote=True,
        actor=ACTOR,
    )
    centre.set_headcount(year=2024, headcount=30, actor=ACTOR)
    centre.set_headcount(year=2024, headcount=32, actor=ACTOR)
    doctor = Staff.register(staff_id="S00001", name="张三", actor=ACTOR)
    doctor.rename(name="张叁", actor=ACTOR)
    posting = {"institution_code": "C01", "establishment": "on", "from_date": date(2024, 1, 1)}
    doctor.post_to(post="clinical", to_date=None, actor=ACTOR, **posting)
    doctor.post_to(post="nursing", to_date=date(2024, 6, 30), actor=ACTOR, **posting)
    item = CatalogueItem.define(
        item_code="B001", name="门诊", category="basic_medical", unit="人次", actor=ACTOR
    )
    item.describe(name="普通门诊", category="basic_medical", unit="人次", actor=ACTOR)
    for value in ("1.0", "1.2"):
        item.set_value(
            value=Decimal(value),
            effective_from=date(2024, 1, 1),
            reference=f"文件 {value}",
            actor=ACTOR,
        )
    year = StaffYear.open(staff_id="S00001", year=2024, actor=ACTOR)
    year.assess(coefficient=Decimal("1.1"), reference="考核", actor=ACTOR)
    app.log.save(centre, doctor, item, year)

    app.catch_up()  # all of it in one batch

    assert rows(app, reg.institutions) == [
        ("C01", "甲镇中心卫生院", "township_health_centre", None, True)
    ]
    assert rows(app, reg.headcount) == [("C01", 2024, 32)]
    assert rows(app, reg.staff) == [("S00001", "张叁")]
    assert rows(app, reg.postings) == [
        ("S00001", date(2024, 1, 1), date(2024, 6, 30), "C01", "nursing", "on")
    ]
    assert rows(app, reg.items) == [("B001", "普通门诊", "basic_medical", "人次")]
    values = rows(app, reg.item_values)
    assert [(v[1], v[2], v[3], v[4]) for v in values] == [
        ("B001", date(2024, 1, 1), 10_000, "文件 1.0"),
        ("B001", date(2024, 1, 1), 12_000, "文件 1.2"),
    ]
    assert coefficients(app) == [(2024, "S00001", "1.1")]

    # A later catch-up, by a process that has not seen the registrations: the codes and
    # owners come from the tables the first one wrote.
    centre.set_headcount(year=2024, headcount=35, actor=ACTOR)
    doctor.rename(name="张三丰", actor=ACTOR)
    item.describe(name="门诊诊疗", category="basic_medical", unit="人次", actor=ACTOR)
    year.assess(coefficient=Decimal("1.3"), reference="复核", actor=ACTOR)
    app.log.save(centre, doctor, item, year)
    app.registry_projection = reg.RegistryProjection()
    app.inputs_projection = inp.InputsProjection()

    app.catch_up()

    assert rows(app, reg.headcount) == [("C01", 2024, 35)]
    assert rows(app, reg.staff) == [("S00001", "张三丰")]
    assert rows(app, reg.items) == [("B001", "门诊诊疗", "basic_medical", "人次")]
    assert coefficients(app) == [(2024, "S00001", "1.1"), (2024, "S00001", "1.3")]
    app.rebuild()
    assert rows(app, reg.staff) == [("S00001", "张三丰")]
    assert coefficients(app) == [(2024, "S00001", "1.1"), (2024, "S00001", "1.3")]


def test_aggregates_read_together_are_those_the_repository_rebuilds(
    reference_app: Dangliang,
) -> None:
    """`EventLog.aggregates` (reference files read all their aggregates at once) rebuilds each
    aggregate exactly as `repository.get` does, and leaves out those never stored."""
    from dangliang.domain import ids

    log = reference_app.log
    centre = log.repository.get(ids.institution_id("C01"))
    centre.set_headcount(year=2031, headcount=77, actor=ACTOR)  # a later version
    log.save(centre)
    wanted = [
        *(ids.institution_id(code) for code in ("C01", "C01V01", "C02")),
        *(ids.staff_id(s) for s in ("S00001", "S00002")),
        *(
            ids.catalogue_item_id(code)
            for code in sorted(reference_app.registry().item_categories)[:3]
        ),
        ids.institution_id("NO-SUCH-CODE"),
    ]
    together = log.aggregates(wanted)
    assert ids.institution_id("NO-SUCH-CODE") not in together
    assert len(together) == len(wanted) - 1
    for oid, aggregate in together.items():
        alone = log.repository.get(oid)
        assert type(aggregate) is type(alone)
        assert vars(aggregate) == vars(alone)
    assert together[ids.institution_id("C01")].headcount[2031] == 77
