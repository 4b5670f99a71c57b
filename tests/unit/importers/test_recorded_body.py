"""The importer's hand-assembled compact state reads back as the library's own event.

The bulk importer skips the aggregate and the mapper for speed and writes service records in
the compact form (`ledger.compact`); this test is what allows that: for any row, the stored
state it writes, read by the log's mapper with its batch's facts, is the event
`ServiceRecord.record(...)` produces — every field, with its type — and the long form the
library stores for that event holds the same facts (`record_content`), so a record stored by
either form is recognised when its file is imported again.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.domain.ids import service_record_id, service_record_id_hex
from dangliang.domain.service import ServiceRecord
from dangliang.importers.services import recorded_body, same_record
from dangliang.ledger.compact import (
    SERVICE_RECORD_TOPIC,
    SERVICE_RECORD_TOPIC_V1,
    BatchFacts,
    CompactMapper,
    record_content,
)
from tests.conftest import examples


def library_mapper():  # type: ignore[no-untyped-def]
    from eventsourcing.application import Application

    from dangliang.ledger.eventlog import DateAsISO

    class Log(Application):  # type: ignore[type-arg]
        def register_transcodings(self, transcoder):  # type: ignore[no-untyped-def]
            super().register_transcodings(transcoder)
            transcoder.register(DateAsISO())

    return Log(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


MAPPER = library_mapper()
STAMP = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def compact_mapper(actor: str, import_ref: str) -> CompactMapper:
    mapper = CompactMapper(transcoder=MAPPER.transcoder)
    mapper.batch_facts = lambda position: BatchFacts(STAMP, actor, import_ref)
    return mapper


text = st.text(min_size=1, max_size=20)  # any characters: quotes, backslashes, CJK, controls
codes = st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)


@settings(max_examples=examples(200))
@given(
    institution=codes,
    source=text,
    staff=codes,
    item=codes,
    quantity=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1_000_000), places=4),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
    patient=st.none() | text,
    compliant=st.none() | st.booleans(),
    actor=text,
)
def test_body_is_what_the_mapper_stores(
    institution: str,
    source: str,
    staff: str,
    item: str,
    quantity: Decimal,
    day: date,
    patient: str | None,
    compliant: bool | None,
    actor: str,
) -> None:
    import_ref = "sha256:0123456789abcdef"
    row = {
        "institution_code": institution,
        "source_id": source,
        "staff_id": staff,
        "item_code": item,
        "quantity": quantity,
        "service_date": day,
        "patient_ref": patient,
        "compliant": compliant,
    }
    record = ServiceRecord.record(
        institution_code=institution,
        source_id=source,
        staff_id=staff,
        item_code=item,
        quantity=quantity,
        service_date=day,
        patient_ref=patient,
        compliant=True if compliant is None else compliant,
        actor=actor,
        import_ref=import_ref,
    )
    (event,) = record.collect_events()
    object.__setattr__(event, "timestamp", STAMP)
    expected = MAPPER.to_stored_event(event)

    body = recorded_body(row)  # type: ignore[arg-type]
    state = b"[1234567" + body.encode()  # as the bulk writer stores it: the batch, then the body
    stored = StoredEvent(expected.originator_id, 1, SERVICE_RECORD_TOPIC, state)
    read = compact_mapper(actor, import_ref).to_domain_event(stored)
    assert type(read) is ServiceRecord.Recorded
    assert vars(read) == vars(event)
    assert {k: type(v) for k, v in vars(read).items()} == {
        k: type(v) for k, v in vars(event).items()
    }
    # Compact form 1 (records imported before form 2: the date as ISO text) reads back the same.
    values = json.loads(state)
    values[5] = row["service_date"].isoformat()  # type: ignore[attr-defined]
    state_v1 = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    stored_v1 = StoredEvent(expected.originator_id, 1, SERVICE_RECORD_TOPIC_V1, state_v1)
    assert vars(compact_mapper(actor, import_ref).to_domain_event(stored_v1)) == vars(event)
    # The long form and form 1 of the same event hold the same facts, and nothing else does.
    assert record_content(expected.state) == body == record_content(state)
    assert record_content(state_v1) == body
    assert same_record(expected.state, body) and same_record(state, body)
    other = dict(row, quantity=quantity + 1)
    assert not same_record(expected.state, recorded_body(other))  # type: ignore[arg-type]
    assert service_record_id_hex(institution, source) == expected.originator_id.hex
    assert service_record_id(institution, source) == expected.originator_id


def test_defaults_are_left_out_and_put_back() -> None:
    """The usual record ends at its date or its patient reference; quantities keep their
    exact decimal text and a non-compliant record says so."""
    day = date(2024, 3, 5)
    usual = recorded_body(_row(quantity=Decimal(1), patient=None, compliant=None))
    assert usual == ',"C1","HIS1","S1","PH1",19787]'  # 2024-03-05: days since 1970-01-01
    assert recorded_body(_row(quantity=Decimal("2.50"), patient="P1", compliant=False)) == (
        ',"C1","HIS1","S1","PH1",19787,"P1","2.5",0]'
    )
    assert recorded_body(_row(quantity=Decimal(3), patient=None, compliant=True)) == (
        ',"C1","HIS1","S1","PH1",19787,null,3]'
    )
    read = compact_mapper("a", "sha256:0").to_domain_event(
        StoredEvent(
            service_record_id("C1", "HIS1"), 1, SERVICE_RECORD_TOPIC, b"[7" + usual.encode()
        )
    )
    assert (read.quantity, read.service_date, read.patient_ref, read.compliant) == (
        Decimal(1),
        day,
        None,
        True,
    )


def _row(quantity: Decimal, patient: str | None, compliant: bool | None) -> dict[str, object]:
    return {
        "institution_code": "C1",
        "source_id": "HIS1",
        "staff_id": "S1",
        "item_code": "PH1",
        "quantity": quantity,
        "service_date": date(2024, 3, 5),
        "patient_ref": patient,
        "compliant": compliant,
    }
