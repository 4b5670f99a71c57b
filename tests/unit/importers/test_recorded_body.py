"""The importer's hand-assembled event JSON is byte for byte what the library would store.

The bulk importer skips the aggregate and the mapper for speed; this test is what allows
that: for any row, the stored state it writes equals the mapper's stored state of the event
`ServiceRecord.record(...)` produces, given the same timestamp.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.domain.ids import service_record_id, service_record_id_hex
from dangliang.domain.service import ServiceRecord
from dangliang.importers.services import recorded_body, recorded_tail
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
    stamp = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    object.__setattr__(event, "timestamp", stamp)
    expected = MAPPER.to_stored_event(event)

    body = recorded_body(row, recorded_tail(actor, import_ref))  # type: ignore[arg-type]
    head = '{"timestamp":{"_type_":"datetime_iso","_data_":"' + stamp.isoformat() + '"},'
    assert (head + body[1:]).encode() == expected.state
    assert service_record_id_hex(institution, source) == expected.originator_id.hex
    assert service_record_id(institution, source) == expected.originator_id
