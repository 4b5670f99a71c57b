"""Unit tests for the pure domain model: aggregates, their events and their rules.

No database: aggregates are exercised directly, and replayed through an in-memory
eventsourcing application (POPO persistence, with the same date transcoding as `EventLog`).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.domain import ids
from dangliang.domain.catalogue import CatalogueItem
from dangliang.domain.errors import DomainError, InvalidValue, NothingToCorrect, RecordVoided
from dangliang.domain.imports import DataImport
from dangliang.domain.institution import Institution
from dangliang.domain.service import ServiceRecord
from dangliang.domain.staff import Staff
from dangliang.domain.values import canonical_decimal, equivalent_value, positive_quantity
from dangliang.ledger.eventlog import DateAsISO
from tests.conftest import examples

# ------------------------------------------------------------------------------- helpers


class MemoryLog(Application[Any]):
    """An in-memory event log with the transcodings the real `EventLog` registers."""

    is_snapshotting_enabled = False

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())


@pytest.fixture
def memory_log() -> MemoryLog:
    return MemoryLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def state(agg: Aggregate) -> dict[str, Any]:
    """The aggregate's own attributes (without pending events)."""
    return {k: v for k, v in vars(agg).items() if k != "_pending_events"}


def replayed(log: MemoryLog, agg: Aggregate) -> Any:
    """Save the aggregate's new events, rebuild it from the log, and return the rebuilt one."""
    log.save(agg)
    return log.repository.get(agg.id)


def a_record(**overrides: Any) -> ServiceRecord:
    fields: dict[str, Any] = {
        "institution_code": "C01",
        "source_id": "HIS000000001",
        "staff_id": "S00001",
        "item_code": "BM001",
        "quantity": Decimal("2"),
        "service_date": date(2024, 3, 5),
        "patient_ref": "P1",
        "compliant": True,
        "actor": "clerk",
        "import_ref": "sha256:0123456789abcdef",
    }
    fields.update(overrides)
    return ServiceRecord.record(**fields)


def collected(agg: Aggregate) -> list[Any]:
    """The aggregate's new events (typed loosely: each event class has its own fields)."""
    return list(agg.collect_events())


# ----------------------------------------------------------------------- ServiceRecord


def test_record_creates_one_recorded_event_with_the_facts() -> None:
    r = a_record()
    events = collected(r)
    assert [type(e) for e in events] == [ServiceRecord.Recorded]
    e = events[0]
    assert isinstance(e, ServiceRecord.Recorded)
    assert (e.institution_code, e.source_id, e.staff_id, e.item_code) == (
        "C01",
        "HIS000000001",
        "S00001",
        "BM001",
    )
    assert e.quantity == Decimal("2")
    assert e.service_date == date(2024, 3, 5)
    assert (e.patient_ref, e.compliant, e.actor, e.import_ref) == (
        "P1",
        True,
        "clerk",
        "sha256:0123456789abcdef",
    )
    assert r.id == ids.service_record_id("C01", "HIS000000001")
    assert r.voided is False
    assert r.version == 1


def test_record_defaults_compliant_true_and_no_patient() -> None:
    r = ServiceRecord.record(
        institution_code="C01",
        source_id="X1",
        staff_id="S00001",
        item_code="PH001",
        quantity=Decimal(1),
        service_date=date(2024, 1, 1),
        actor="clerk",
    )
    assert r.compliant is True
    assert r.patient_ref is None
    (e,) = collected(r)
    assert e.import_ref == ""


def test_correct_records_the_full_new_values() -> None:
    r = a_record()
    collected(r)
    r.correct(
        reason="录入错误 / mistyped",
        actor="auditor",
        item_code="BM002",
        quantity=Decimal("3.50"),
        staff_id="S00002",
        service_date=date(2024, 3, 6),
        compliant=False,
    )
    (e,) = collected(r)
    assert isinstance(e, ServiceRecord.Corrected)
    assert (e.item_code, e.quantity, e.staff_id, e.service_date, e.compliant) == (
        "BM002",
        Decimal("3.5"),
        "S00002",
        date(2024, 3, 6),
        False,
    )
    assert str(e.quantity) == "3.5"
    assert (e.reason, e.actor) == ("录入错误 / mistyped", "auditor")
    assert (r.item_code, r.quantity, r.staff_id, r.service_date, r.compliant) == (
        "BM002",
        Decimal("3.5"),
        "S00002",
        date(2024, 3, 6),
        False,
    )
    assert r.version == 2


def test_correct_with_blank_fields_keeps_the_other_values() -> None:
    r = a_record()
    collected(r)
    r.correct(reason="床日数录入错误", actor="auditor", quantity=Decimal("3"))
    (e,) = collected(r)
    assert isinstance(e, ServiceRecord.Corrected)
    # the event carries the full new values: unchanged ones copied from the record
    assert (e.item_code, e.quantity, e.staff_id, e.service_date, e.compliant) == (
        "BM001",
        Decimal("3"),
        "S00001",
        date(2024, 3, 5),
        True,
    )
    assert (r.item_code, r.staff_id, r.service_date, r.compliant) == (
        "BM001",
        "S00001",
        date(2024, 3, 5),
        True,
    )
    assert r.quantity == Decimal("3")
    # patient and source are never touched by a correction
    assert (r.patient_ref, r.source_id, r.institution_code) == ("P1", "HIS000000001", "C01")


def test_correct_compliant_only() -> None:
    r = a_record()
    collected(r)
    r.correct(reason="抽查不达标", actor="auditor", compliant=False)
    (e,) = collected(r)
    assert e.compliant is False
    assert r.compliant is False and r.quantity == Decimal("2")


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"quantity": Decimal("2")},
        {"quantity": Decimal("2.000")},  # the same number in another spelling
        {"item_code": "BM001", "staff_id": "S00001"},
        {"service_date": date(2024, 3, 5), "compliant": True},
    ],
)
def test_correction_that_changes_nothing_is_refused(change: dict[str, Any]) -> None:
    r = a_record()
    collected(r)
    with pytest.raises(NothingToCorrect) as info:
        r.correct(reason="r", actor="auditor", **change)
    assert "C01/HIS000000001" in info.value.message_zh
    assert "changes nothing" in info.value.message_en
    assert collected(r) == []
    assert r.version == 1


def test_void_records_a_voided_event() -> None:
    r = a_record()
    collected(r)
    r.void(reason="抽查未提供服务 / not delivered", actor="auditor")
    (e,) = collected(r)
    assert isinstance(e, ServiceRecord.Voided)
    assert (e.reason, e.actor) == ("抽查未提供服务 / not delivered", "auditor")
    assert r.voided is True
    # the facts of the record stay as they were
    assert r.quantity == Decimal("2") and r.item_code == "BM001"


def test_void_after_void_is_refused_bilingually() -> None:
    r = a_record()
    r.void(reason="r", actor="auditor")
    collected(r)
    with pytest.raises(RecordVoided) as info:
        r.void(reason="again", actor="auditor")
    err = info.value
    assert isinstance(err, DomainError)
    assert "已作废" in err.message_zh
    assert "C01/HIS000000001" in err.message_zh
    assert "不能再作废" in err.message_zh
    assert "is voided" in err.message_en and "cannot be voided" in err.message_en
    assert str(err) == f"{err.message_zh} / {err.message_en}"
    assert collected(r) == []


def test_correct_after_void_is_refused_bilingually() -> None:
    r = a_record()
    r.void(reason="r", actor="auditor")
    collected(r)
    with pytest.raises(RecordVoided) as info:
        r.correct(reason="fix", actor="auditor", quantity=Decimal(5))
    err = info.value
    assert "已作废" in err.message_zh and "不能再更正" in err.message_zh
    assert "cannot be corrected" in err.message_en
    assert "已作废" in str(err) and " / " in str(err)
    assert collected(r) == []
    assert r.quantity == Decimal("2")


@pytest.mark.parametrize("bad", ["0", "-1", "-0.0001", "0.00000"])
def test_non_positive_quantity_is_refused(bad: str) -> None:
    with pytest.raises(InvalidValue) as info:
        a_record(quantity=Decimal(bad))
    assert "数量必须大于 0" in info.value.message_zh
    assert "quantity must be positive" in info.value.message_en


@pytest.mark.parametrize("bad", ["1.23456", "0.00001"])
def test_quantity_with_more_than_four_places_is_refused(bad: str) -> None:
    with pytest.raises(InvalidValue) as info:
        a_record(quantity=Decimal(bad))
    assert "最多 4 位小数" in info.value.message_zh
    assert "more than 4 decimal places" in info.value.message_en


def test_correction_to_a_bad_quantity_is_refused() -> None:
    r = a_record()
    collected(r)
    with pytest.raises(InvalidValue):
        r.correct(reason="r", actor="a", quantity=Decimal("-3"))
    with pytest.raises(InvalidValue):
        r.correct(reason="r", actor="a", quantity=Decimal("1.00001"))
    assert collected(r) == []


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("1.50", "1.5"),
        ("10", "10"),
        ("1E+1", "10"),
        ("100.00", "100"),
        ("0.5000", "0.5"),
        ("1.23450", "1.2345"),
        ("1.00000", "1"),  # trailing zeros are not decimal places
        ("2500", "2500"),
    ],
)
def test_quantity_is_stored_in_canonical_form(given: str, stored: str) -> None:
    r = a_record(quantity=Decimal(given))
    (e,) = collected(r)
    assert str(e.quantity) == stored
    assert str(r.quantity) == stored
    assert str(positive_quantity(Decimal(given))) == stored
    assert "E" not in str(canonical_decimal(Decimal(given)))


@pytest.mark.parametrize("check", [positive_quantity, equivalent_value])
def test_nan_is_refused_as_a_domain_error(check: Any) -> None:
    with pytest.raises(InvalidValue):
        check(Decimal("NaN"))


def test_infinite_quantity_is_refused_as_a_domain_error() -> None:
    with pytest.raises(InvalidValue):
        a_record(quantity=Decimal("Infinity"))


# ---------------------------------------------------------------------------------- ids

# Institution codes are `Code`s (no "|"); source ids are any text, including "|".
institution_codes = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,64}\Z")
source_ids = st.one_of(
    st.text(min_size=0, max_size=60),
    st.text(alphabet="|村卫生室乡镇HIS0123-", min_size=0, max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=20),
)


@settings(max_examples=examples(200), deadline=None)
@given(institution_codes, source_ids)
def test_service_record_id_hex_equals_uuid5_hex(inst: str, source: str) -> None:
    uid = ids.service_record_id(inst, source)
    assert ids.service_record_id_hex(inst, source) == uid.hex
    assert uid.version == 5
    assert uid.variant == uuid.RFC_4122
    # deterministic
    assert ids.service_record_id(inst, source) == uid


@pytest.mark.parametrize(
    ("inst", "source"),
    [
        ("C01", "HIS000000001"),
        ("C01V03", "记录|001"),
        ("C02", "|"),
        ("C02", ""),
        ("C03", "患者张三的第1次随访"),
        ("C04", "a|b|c"),
        ("C05", "\U0001f600 emoji"),
    ],
)
def test_service_record_id_hex_examples(inst: str, source: str) -> None:
    assert ids.service_record_id_hex(inst, source) == ids.service_record_id(inst, source).hex
    assert ids.service_record_id(inst, source) == uuid.uuid5(
        ids.NAMESPACE, f"service-record|{inst}|{source}"
    )


@settings(max_examples=examples(150), deadline=None)
@given(institution_codes, source_ids, institution_codes, source_ids)
def test_service_record_id_is_unambiguous(a_inst: str, a_src: str, b_inst: str, b_src: str) -> None:
    same = (a_inst, a_src) == (b_inst, b_src)
    assert (ids.service_record_id(a_inst, a_src) == ids.service_record_id(b_inst, b_src)) == same


def test_service_record_id_pipes_do_not_collide() -> None:
    # "C1" + "|x" and "C1|" + "x" would collide, but "|" cannot be in an institution code
    assert ids.service_record_id("C1", "x|y") != ids.service_record_id("C1", "x")
    assert ids.service_record_id("C1", "|x") != ids.service_record_id("C1", "x")


def test_ids_are_fixed_forever() -> None:
    # Changing the namespace or the key format would change every id in every county's log.
    assert uuid.UUID("6f1c3d2a-9b57-4e0e-8a8b-2d7c5e1f0a11") == ids.NAMESPACE
    assert ids.institution_id("C01") == uuid.uuid5(ids.NAMESPACE, "institution|C01")
    assert ids.staff_id("S00001") == uuid.uuid5(ids.NAMESPACE, "staff|S00001")
    assert ids.catalogue_item_id("BM001") == uuid.uuid5(ids.NAMESPACE, "catalogue-item|BM001")
    kinds = {
        ids.institution_id("X"),
        ids.staff_id("X"),
        ids.catalogue_item_id("X"),
        ids.service_record_id("X", "X"),
    }
    assert len(kinds) == 4


def test_aggregate_ids_come_from_ids() -> None:
    assert a_record().id == ids.service_record_id("C01", "HIS000000001")
    inst = Institution.register(
        code="C01",
        name="乾元镇卫生院",
        kind="township_health_centre",
        parent_code=None,
        remote=False,
        actor="a",
    )
    assert inst.id == ids.institution_id("C01")
    assert Staff.register(staff_id="S1", name="n", actor="a").id == ids.staff_id("S1")
    item = CatalogueItem.define(
        item_code="BM001", name="普通门诊诊疗", category="basic_medical", unit="人次", actor="a"
    )
    assert item.id == ids.catalogue_item_id("BM001")


# ---------------------------------------------------------------------------- Institution


def a_centre(**overrides: Any) -> Institution:
    fields: dict[str, Any] = {
        "code": "C01",
        "name": "乾元镇卫生院",
        "kind": "township_health_centre",
        "parent_code": None,
        "remote": False,
        "actor": "bureau",
    }
    fields.update(overrides)
    return Institution.register(**fields)


def test_register_centre_and_village_clinic() -> None:
    c = a_centre()
    (e,) = collected(c)
    assert isinstance(e, Institution.Registered)
    assert (e.code, e.name, e.kind, e.parent_code, e.remote, e.actor) == (
        "C01",
        "乾元镇卫生院",
        "township_health_centre",
        None,
        False,
        "bureau",
    )
    assert c.headcount == {}
    v = Institution.register(
        code="C01V01",
        name="沈塘村卫生室",
        kind="village_clinic",
        parent_code="C01",
        remote=False,
        actor="bureau",
    )
    assert v.parent_code == "C01" and v.kind == "village_clinic"
    community = a_centre(code="C03", kind="community_health_centre", remote=True)
    assert community.remote is True


def test_village_clinic_needs_a_parent() -> None:
    for parent in (None, ""):
        with pytest.raises(InvalidValue) as info:
            Institution.register(
                code="V1",
                name="村卫生室",
                kind="village_clinic",
                parent_code=parent,
                remote=False,
                actor="a",
            )
        assert "上级机构" in info.value.message_zh
        assert "needs a parent" in info.value.message_en


@pytest.mark.parametrize("kind", ["township_health_centre", "community_health_centre"])
def test_centre_must_not_have_a_parent(kind: str) -> None:
    with pytest.raises(InvalidValue) as info:
        a_centre(kind=kind, parent_code="C02")
    assert "只有村卫生室有上级机构" in info.value.message_zh
    assert "only a village clinic" in info.value.message_en


def test_unknown_institution_kind_is_refused() -> None:
    with pytest.raises(InvalidValue) as info:
        a_centre(kind="hospital")
    assert "hospital" in info.value.message_zh and "unknown institution kind" in (
        info.value.message_en
    )


def test_describe_records_changes_only() -> None:
    c = a_centre()
    collected(c)
    assert (
        c.describe(
            name="乾元镇卫生院",
            kind="township_health_centre",
            parent_code=None,
            remote=False,
            actor="b",
        )
        is False
    )
    assert collected(c) == []
    assert c.version == 1
    assert (
        c.describe(
            name="乾元镇中心卫生院",
            kind="township_health_centre",
            parent_code=None,
            remote=True,
            actor="b",
        )
        is True
    )
    (e,) = collected(c)
    assert isinstance(e, Institution.Described)
    assert (e.name, e.remote, e.actor) == ("乾元镇中心卫生院", True, "b")
    assert (c.name, c.remote) == ("乾元镇中心卫生院", True)


def test_describe_checks_kind_and_parent() -> None:
    c = a_centre()
    collected(c)
    with pytest.raises(InvalidValue):
        c.describe(name="x", kind="village_clinic", parent_code=None, remote=False, actor="b")
    with pytest.raises(InvalidValue):
        c.describe(
            name="x", kind="township_health_centre", parent_code="C9", remote=False, actor="b"
        )
    assert collected(c) == []
    assert c.name == "乾元镇卫生院"


def test_set_headcount() -> None:
    c = a_centre()
    collected(c)
    assert c.set_headcount(year=2024, headcount=33, actor="b") is True
    assert c.set_headcount(year=2024, headcount=33, actor="b") is False
    assert c.set_headcount(year=2023, headcount=30, actor="b") is True
    assert c.set_headcount(year=2024, headcount=0, actor="b") is True
    events = collected(c)
    assert [type(e) for e in events] == [Institution.HeadcountSet] * 3
    assert [(e.year, e.headcount) for e in events] == [(2024, 33), (2023, 30), (2024, 0)]
    assert c.headcount == {2024: 0, 2023: 30}
    with pytest.raises(InvalidValue) as info:
        c.set_headcount(year=2024, headcount=-1, actor="b")
    assert "负数" in info.value.message_zh and "negative" in info.value.message_en
    assert collected(c) == []


# ---------------------------------------------------------------------------------- Staff


def a_staff() -> Staff:
    s = Staff.register(staff_id="S00001", name="叶雪", actor="bureau")
    return s


def post(s: Staff, frm: date, to: date | None, inst: str = "C01", **kw: Any) -> bool:
    return s.post_to(
        institution_code=inst,
        post=kw.get("post", "clinical"),
        establishment=kw.get("establishment", "on"),
        from_date=frm,
        to_date=to,
        actor="bureau",
    )


def test_staff_register_and_rename() -> None:
    s = a_staff()
    (e,) = collected(s)
    assert isinstance(e, Staff.Registered)
    assert (e.staff_id, e.name) == ("S00001", "叶雪")
    assert s.rename(name="叶雪", actor="b") is False
    assert s.rename(name="叶雪梅", actor="b") is True
    (e,) = collected(s)
    assert isinstance(e, Staff.Renamed) and s.name == "叶雪梅"


def test_postings_and_institution_on() -> None:
    s = a_staff()
    collected(s)
    assert post(s, date(2020, 1, 1), date(2022, 6, 30), "C01") is True
    assert post(s, date(2022, 7, 1), None, "C02", post="public_health") is True
    events = collected(s)
    assert [type(e) for e in events] == [Staff.Posted, Staff.Posted]
    assert (events[1].institution_code, events[1].post, events[1].to_date) == (
        "C02",
        "public_health",
        None,
    )
    assert s.institution_on(date(2019, 12, 31)) is None
    assert s.institution_on(date(2020, 1, 1)) == "C01"
    assert s.institution_on(date(2022, 6, 30)) == "C01"  # to_date is inclusive
    assert s.institution_on(date(2022, 7, 1)) == "C02"
    assert s.institution_on(date(2030, 1, 1)) == "C02"  # open posting


def test_same_posting_twice_records_nothing() -> None:
    s = a_staff()
    assert post(s, date(2020, 1, 1), None) is True
    collected(s)
    assert post(s, date(2020, 1, 1), None) is False
    assert collected(s) == []


def test_posting_with_same_from_date_replaces_the_earlier_one() -> None:
    s = a_staff()
    post(s, date(2020, 1, 1), None)
    collected(s)
    assert post(s, date(2020, 1, 1), date(2024, 8, 31)) is True  # a leaving date is set
    (e,) = collected(s)
    assert e.to_date == date(2024, 8, 31)
    assert s.institution_on(date(2024, 9, 1)) is None
    assert len(s.postings) == 1


@pytest.mark.parametrize(
    ("frm", "to"),
    [
        (date(2021, 1, 1), None),  # open posting inside the first
        (date(2019, 1, 1), date(2020, 1, 1)),  # ends on the first day of the other
        (date(2022, 6, 30), date(2023, 1, 1)),  # starts on the last day of the other
        (date(2019, 1, 1), None),
    ],
)
def test_overlapping_posting_is_refused(frm: date, to: date | None) -> None:
    s = a_staff()
    post(s, date(2020, 1, 1), date(2022, 6, 30))
    collected(s)
    with pytest.raises(InvalidValue) as info:
        post(s, frm, to, "C02")
    assert "重叠" in info.value.message_zh
    assert "overlaps the posting from 2020-01-01" in info.value.message_en
    assert collected(s) == []


def test_posting_after_an_open_posting_is_refused() -> None:
    s = a_staff()
    post(s, date(2020, 1, 1), None)
    with pytest.raises(InvalidValue):
        post(s, date(2023, 1, 1), None, "C02")


def test_to_date_before_from_date_is_refused() -> None:
    s = a_staff()
    collected(s)
    with pytest.raises(InvalidValue) as info:
        post(s, date(2024, 3, 1), date(2024, 2, 29))
    assert "截止日期早于起始日期" in info.value.message_zh
    assert "to_date is before from_date: 2024-02-29 < 2024-03-01" in info.value.message_en
    assert collected(s) == []
    assert post(s, date(2024, 3, 1), date(2024, 3, 1)) is True  # one-day posting is fine


def test_unknown_post_or_establishment_is_refused() -> None:
    s = a_staff()
    with pytest.raises(InvalidValue) as info:
        post(s, date(2024, 1, 1), None, post="surgeon")
    assert "未知岗位" in info.value.message_zh
    with pytest.raises(InvalidValue) as info:
        post(s, date(2024, 1, 1), None, establishment="在编")  # codes only in the domain
    assert "on or off" in info.value.message_en


# --------------------------------------------------------------------------- CatalogueItem


def an_item() -> CatalogueItem:
    return CatalogueItem.define(
        item_code="BM006", name="长处方", category="basic_medical", unit="张", actor="bureau"
    )


def test_define_item() -> None:
    item = an_item()
    (e,) = collected(item)
    assert isinstance(e, CatalogueItem.Defined)
    assert (e.item_code, e.name, e.category, e.unit) == ("BM006", "长处方", "basic_medical", "张")
    assert item.values == {}
    assert item.value_on(date(2024, 1, 1)) is None
    with pytest.raises(InvalidValue):
        CatalogueItem.define(item_code="X", name="x", category="基本医疗", unit="次", actor="a")


def test_describe_item() -> None:
    item = an_item()
    collected(item)
    assert item.describe(name="长处方", category="basic_medical", unit="张", actor="b") is False
    assert item.describe(name="长处方", category="basic_medical", unit="次", actor="b") is True
    (e,) = collected(item)
    assert isinstance(e, CatalogueItem.Described) and item.unit == "次"
    with pytest.raises(InvalidValue):
        item.describe(name="x", category="other", unit="次", actor="b")


def test_value_history_is_kept_and_value_on_picks_the_latest() -> None:
    item = an_item()
    collected(item)
    ref = "示例数值，非官方 / illustrative value, not official"
    assert (
        item.set_value(
            value=Decimal("1.2"), effective_from=date(2024, 7, 1), reference=ref, actor="b"
        )
        is True
    )
    assert (
        item.set_value(
            value=Decimal("0.8"), effective_from=date(2024, 1, 1), reference=ref, actor="b"
        )
        is True
    )
    events = collected(item)
    assert [type(e) for e in events] == [CatalogueItem.ValueSet] * 2
    assert str(events[0].equivalent_value) == "1.2000"  # kept at 4 places
    assert events[0].effective_from == date(2024, 7, 1)
    assert item.values == {
        date(2024, 1, 1): (Decimal("0.8000"), ref),
        date(2024, 7, 1): (Decimal("1.2000"), ref),
    }
    assert item.value_on(date(2023, 12, 31)) is None
    assert item.value_on(date(2024, 1, 1)) == Decimal("0.8")
    assert item.value_on(date(2024, 6, 30)) == Decimal("0.8")
    assert item.value_on(date(2024, 7, 1)) == Decimal("1.2")
    assert item.value_on(date(2030, 1, 1)) == Decimal("1.2")


def test_same_value_twice_records_nothing_but_a_retroactive_change_is_recorded() -> None:
    item = an_item()
    ref = "政策 A"
    item.set_value(value=Decimal("0.8"), effective_from=date(2024, 1, 1), reference=ref, actor="b")
    collected(item)
    assert (
        item.set_value(
            value=Decimal("0.80000"), effective_from=date(2024, 1, 1), reference=ref, actor="b"
        )
        is False
    )
    assert collected(item) == []
    # a new value for the same month is a retroactive change: a new event, never in place
    assert (
        item.set_value(
            value=Decimal("0.9"), effective_from=date(2024, 1, 1), reference=ref, actor="b"
        )
        is True
    )
    # the same value with a new reference is recorded too
    assert (
        item.set_value(
            value=Decimal("0.9"), effective_from=date(2024, 1, 1), reference="政策 B", actor="b"
        )
        is True
    )
    assert [e.equivalent_value for e in collected(item)] == [Decimal("0.9")] * 2
    assert item.value_on(date(2024, 1, 15)) == Decimal("0.9")


def test_value_zero_is_allowed() -> None:
    item = an_item()
    assert (
        item.set_value(value=Decimal(0), effective_from=date(2024, 1, 1), reference="r", actor="b")
        is True
    )
    assert item.value_on(date(2024, 2, 1)) == Decimal("0.0000")


@pytest.mark.parametrize("day", [date(2024, 1, 2), date(2024, 2, 29), date(2024, 12, 31)])
def test_value_not_on_the_first_of_a_month_is_refused(day: date) -> None:
    item = an_item()
    collected(item)
    with pytest.raises(InvalidValue) as info:
        item.set_value(value=Decimal("1"), effective_from=day, reference="r", actor="b")
    assert "必须是某月 1 日" in info.value.message_zh
    assert f"must be the 1st of a month: {day.isoformat()}" in info.value.message_en
    assert collected(item) == []


def test_value_with_more_than_four_places_is_refused() -> None:
    item = an_item()
    with pytest.raises(InvalidValue) as info:
        item.set_value(
            value=Decimal("1.23456"), effective_from=date(2024, 1, 1), reference="r", actor="b"
        )
    assert "最多 4 位小数" in info.value.message_zh
    # trailing zeros beyond 4 places are fine
    assert (
        item.set_value(
            value=Decimal("1.234500"), effective_from=date(2024, 1, 1), reference="r", actor="b"
        )
        is True
    )
    assert item.value_on(date(2024, 1, 1)) == Decimal("1.2345")


def test_negative_value_is_refused() -> None:
    item = an_item()
    with pytest.raises(InvalidValue) as info:
        item.set_value(
            value=Decimal("-0.1"), effective_from=date(2024, 1, 1), reference="r", actor="b"
        )
    assert "不能为负数" in info.value.message_zh and "negative" in info.value.message_en


@pytest.mark.parametrize("reference", ["", "   ", "\t\n"])
def test_value_without_a_reference_is_refused(reference: str) -> None:
    item = an_item()
    collected(item)
    with pytest.raises(InvalidValue) as info:
        item.set_value(
            value=Decimal("1"), effective_from=date(2024, 1, 1), reference=reference, actor="b"
        )
    assert "政策依据" in info.value.message_zh and "policy reference" in info.value.message_en
    assert collected(item) == []


# ------------------------------------------------------------------------------ replaying


def test_service_record_replays_to_the_same_state(memory_log: MemoryLog) -> None:
    r = a_record(source_id="记录|001", quantity=Decimal("1.50"))
    r.correct(reason="r", actor="auditor", quantity=Decimal("2.25"), service_date=date(2024, 4, 1))
    r.correct(reason="r2", actor="auditor", compliant=False)
    expected = state(r)
    back = replayed(memory_log, r)
    assert isinstance(back, ServiceRecord)
    assert state(back) == expected
    assert back.version == 3
    assert back.quantity == Decimal("2.25") and str(back.quantity) == "2.25"
    assert back.service_date == date(2024, 4, 1) and type(back.service_date) is date
    # void afterwards, save again, replay again
    back.void(reason="v", actor="auditor")
    again = replayed(memory_log, back)
    assert again.voided is True and again.version == 4
    with pytest.raises(RecordVoided):
        again.correct(reason="x", actor="a", quantity=Decimal(9))


def test_stored_events_round_trip(memory_log: MemoryLog) -> None:
    r = a_record(quantity=Decimal("10"))
    r.void(reason="v", actor="auditor")
    memory_log.save(r)
    events: list[Any] = list(memory_log.events.get(r.id))
    assert [type(e) for e in events] == [ServiceRecord.Recorded, ServiceRecord.Voided]
    assert str(events[0].quantity) == "10"
    assert events[0].service_date == date(2024, 3, 5)


def test_reference_aggregates_replay_to_the_same_state(memory_log: MemoryLog) -> None:
    inst = a_centre()
    inst.describe(
        name="新名", kind="township_health_centre", parent_code=None, remote=True, actor="b"
    )
    inst.set_headcount(year=2024, headcount=33, actor="b")
    inst.set_headcount(year=2023, headcount=30, actor="b")

    s = a_staff()
    post(s, date(2020, 1, 1), date(2022, 6, 30))
    post(s, date(2022, 7, 1), None, "C02")
    s.rename(name="叶雪梅", actor="b")

    item = an_item()
    item.set_value(value=Decimal("0.8"), effective_from=date(2024, 1, 1), reference="A", actor="b")
    item.set_value(value=Decimal("1.2"), effective_from=date(2024, 7, 1), reference="B", actor="b")
    item.describe(name="长处方（≥4周）", category="basic_medical", unit="张", actor="b")

    imp = DataImport(
        kind="services",
        file_name="s.csv",
        import_ref="sha256:ab",
        rows=3,
        inserted=2,
        already_present=1,
        rejected=0,
        actor="clerk",
    )

    for agg in (inst, s, item, imp):
        expected = state(agg)
        back = replayed(memory_log, agg)
        assert type(back) is type(agg)
        assert state(back) == expected

    back_staff: Staff = memory_log.repository.get(s.id)
    assert back_staff.institution_on(date(2022, 6, 30)) == "C01"
    assert back_staff.institution_on(date(2022, 7, 1)) == "C02"
    back_item: CatalogueItem = memory_log.repository.get(item.id)
    assert back_item.value_on(date(2024, 6, 30)) == Decimal("0.8")
    assert back_item.value_on(date(2024, 7, 1)) == Decimal("1.2")
    assert all(type(d) is date for d in back_item.values)
    assert memory_log.repository.get(inst.id).headcount == {2024: 33, 2023: 30}
